"""Prefect plumbing shared by tasks and flows: concurrency slots, task retries, progress and job
artifacts, deployment steps, automations."""

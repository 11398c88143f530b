"""Prefect Blocks of vodflow: typed configuration that hands out clients.

Register them with `prefect block register -m blocks`.
"""

// Open a flow run in the Prefect UI, go to its job artifact and check the thumbnail picture loaded.
// Usage: node ui_artifact.mjs FLOW_RUN_URL ARTIFACT_KEY IMAGE_URL SCREENSHOT.png
import { withPage } from './chromium.mjs';

const [runUrl, artifactKey, imageUrl, screenshot] = process.argv.slice(2);

await withPage(async (page) => {
  await page.goto(runUrl, { waitUntil: 'networkidle' });
  await page.getByText('Artifacts', { exact: true }).first().click(); // the run page's tab
  await page.getByText(artifactKey, { exact: true }).first().click(); // the artifact's card -> its page
  const picture = page.locator(`img[src="${imageUrl}"]`).first();
  try {
    await picture.waitFor({ state: 'visible', timeout: 120000 });
  } catch (error) {
    await page.screenshot({ path: screenshot });
    const images = await page.locator('img').evaluateAll((all) => all.map((i) => i.getAttribute('src')));
    const body = (await page.locator('body').innerText()).slice(0, 3000);
    throw new Error(`no picture ${imageUrl} on ${page.url()}; images: ${images}; page text:\n${body}`);
  }
  await page.waitForFunction((img) => img.complete, await picture.elementHandle(), { timeout: 60000 });
  const image = await picture.evaluate((img) => ({ naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight }));
  const text = await page.locator('body').innerText();
  const tables = await page.locator('table').count();
  await picture.scrollIntoViewIfNeeded();
  await page.screenshot({ path: screenshot });
  return { url: page.url(), image, tables, hasLadder: text.includes('Ladder'), scripts: await page.locator('main script, [class*=markdown] script').count() };
});

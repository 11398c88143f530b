// Open a flow run in the Prefect UI, go to its job artifact and check the thumbnail picture loaded, and
// measure what of the artifact does not fit the window.
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
  // what does not fit the 1280 px window: the page's own width, and tables cut off (they scroll, unseen)
  const pageWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  const cutTables = await page.locator('table').evaluateAll((all) => all
    .map((t) => t.closest('.markdown-renderer__table') || t)
    .filter((box) => box.scrollWidth > box.clientWidth + 1)
    .map((box) => `${box.scrollWidth} > ${box.clientWidth}`));
  const pictureWidth = await picture.evaluate((img) => img.getBoundingClientRect().right);
  await picture.scrollIntoViewIfNeeded();
  await page.screenshot({ path: screenshot });
  return { url: page.url(), image, tables, pageWidth, cutTables, pictureWidth, hasLadder: text.includes('Ladder'), scripts: await page.locator('main script, [class*=markdown] script').count() };
});

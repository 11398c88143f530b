// Play an HLS master playlist with hls.js in a muted <video> on PAGE_URL; report time, size and fatal errors.
// Usage: node hls_player.mjs PAGE_URL (the page plays what its ?src= names and keeps the state on window.player)
import { withPage } from './chromium.mjs';

const [pageUrl] = process.argv.slice(2);

await withPage(async (page) => {
  await page.goto(pageUrl, { waitUntil: 'load' });
  await page.waitForFunction(
    () => window.player.fatal || document.querySelector('video').currentTime > 1.2,
    null,
    { timeout: 120000, polling: 100 },
  );
  return await page.evaluate(() => {
    const video = document.querySelector('video');
    return { ...window.player, currentTime: video.currentTime, videoWidth: video.videoWidth, videoHeight: video.videoHeight };
  });
});

// Play a cenc ladder on PAGE_URL (cenc_player.html?src=MPD) until 3 s of it played or a fatal error; report
// the player's state, the video's size and how many frames Chromium decoded.
// Usage: node cenc_player.mjs PAGE_URL
import { withPage } from './chromium.mjs';

const [pageUrl] = process.argv.slice(2);

await withPage(async (page) => {
  await page.goto(pageUrl, { waitUntil: 'load' });
  await page.waitForFunction(
    () => window.player.fatal || document.querySelector('video').currentTime > 3,
    null,
    { timeout: 120000, polling: 100 },
  ).catch(() => null);
  return await page.evaluate(() => {
    const video = document.querySelector('video');
    const quality = video.getVideoPlaybackQuality();
    return {
      ...window.player, currentTime: video.currentTime, videoWidth: video.videoWidth,
      videoHeight: video.videoHeight, decodedFrames: quality.totalVideoFrames,
    };
  });
});

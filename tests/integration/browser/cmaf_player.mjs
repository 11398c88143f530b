// Play a CMAF ladder on PAGE_URL (cmaf_player.html: ?player=hls|dash&src=...): once playing, switch to the top
// rung and the other audio track, and report once both took effect and playback went on (or a fatal error).
// Usage: node cmaf_player.mjs PAGE_URL
import { withPage } from './chromium.mjs';

const [pageUrl] = process.argv.slice(2);

await withPage(async (page) => {
  await page.goto(pageUrl, { waitUntil: 'load' });
  const ready = () => window.player.fatal || document.querySelector('video').currentTime > 1.2;
  await page.waitForFunction(ready, null, { timeout: 120000, polling: 100 });
  const before = await page.evaluate(() => ({
    ...window.player, currentAudio: window.currentAudio(), currentTime: document.querySelector('video').currentTime,
  }));
  if (!before.fatal) {
    await page.evaluate(() => window.switchAll());
    await page.waitForFunction(
      (since) => {
        const p = window.player;
        const video = document.querySelector('video');
        const top = p.levels[p.levels.length - 1];
        const onTop = p.rungs.some((r) => r[0] === top[0] && r[1] === top[1]) && video.videoWidth === top[0];
        return p.fatal || (onTop && p.audio.length > 0 && video.currentTime > since + 1.5);
      },
      before.currentTime,
      { timeout: 120000, polling: 100 },
    );
  }
  return await page.evaluate((b) => {
    const video = document.querySelector('video');
    return {
      ...window.player, before: { rungs: b.rungs, audio: b.currentAudio, currentTime: b.currentTime },
      currentAudio: window.currentAudio(),
      currentTime: video.currentTime, videoWidth: video.videoWidth, videoHeight: video.videoHeight,
    };
  }, before);
});

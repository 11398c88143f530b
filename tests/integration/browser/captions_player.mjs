// Play a ladder with captions on PAGE_URL (captions_player.html: ?player=hls|dash&lang=..&src=...) until the
// chosen caption track has shown EXPECTED (a cue text) and playback went past it; report the tracks listed,
// the track's cues and the cues seen showing (or a fatal error).
// Usage: node captions_player.mjs PAGE_URL EXPECTED
import { withPage } from './chromium.mjs';

const [pageUrl, expected] = process.argv.slice(2);

await withPage(async (page) => {
  await page.goto(pageUrl, { waitUntil: 'load' });
  await page.waitForFunction(
    (text) => window.player.fatal || window.player.active.some((cue) => cue[2] === text),
    expected,
    { timeout: 120000, polling: 100 },
  );
  return await page.evaluate(() => ({ ...window.player, currentTime: document.querySelector('video').currentTime }));
});

// Play a CMAF ladder on PAGE_URL (cmaf_player.html: ?player=hls|dash&src=...) across the joins of a chunked
// encode: once playing, report the video codecs the player offers and the one it started on, move to the first
// rendition whose codec starts with CODEC (hls.js: a level, dash.js: a video track; `-`: stay), then for each
// time T seek to T and play on to T + 1 s. Per seek: where it landed and ended, the codec on screen, the
// `waiting` events once playback had resumed (a stall), the player errors since the seek and the buffered
// ranges.
// Usage: node join_player.mjs PAGE_URL CODEC T1 T2 ...
import { withPage } from './chromium.mjs';

const [pageUrl, codec, ...times] = process.argv.slice(2);

await withPage(async (page) => {
  await page.goto(pageUrl, { waitUntil: 'load' });
  const playing = () => window.player.fatal || document.querySelector('video').currentTime > 1.2;
  await page.waitForFunction(playing, null, { timeout: 120000, polling: 100 });
  await page.evaluate(() => {
    const video = document.querySelector('video');
    window.joins = { waiting: [], resumed: false };
    video.addEventListener('waiting', () => { if (window.joins.resumed) window.joins.waiting.push(video.currentTime); });
    // which video codec a player has on screen, and those it offers (bare: dash.js says video/mp4;codecs="...")
    const bare = (c) => (c || '').replace(/^.*codecs="?([^"]*)"?$/, '$1');
    window.videoCodecs = () => (window.hls
      ? window.hls.levels.map((l) => bare(l.videoCodec))
      : window.dash.getTracksFor('video').map((t) => bare(t.codec)));
    window.videoCodec = () => bare(window.hls
      ? (window.hls.levels[window.hls.currentLevel] || {}).videoCodec
      : (window.dash.getCurrentTrackFor('video') || {}).codec);
  });
  const started = await page.evaluate(() => ({ codecs: window.videoCodecs(), picked: window.videoCodec() }));
  if (codec !== '-' && !(await page.evaluate(() => window.player.fatal))) {
    await page.evaluate((wanted) => {
      if (window.hls) {
        window.hls.currentLevel = window.hls.levels.findIndex((l) => (l.videoCodec || '').startsWith(wanted));
      } else {
        const track = window.dash.getTracksFor('video').find((t) => (t.codec || '').includes(`"${wanted}`));
        window.dash.setCurrentTrack(track);
      }
    }, codec);
    await page.waitForFunction(
      (wanted) => window.player.fatal || window.videoCodec().startsWith(wanted),
      codec, { timeout: 60000, polling: 100 },
    );
  }
  const seeks = [];
  for (const t of times.map(Number)) {
    if (await page.evaluate(() => window.player.fatal)) break;
    const frames = await page.evaluate(() => document.querySelector('video').getVideoPlaybackQuality().totalVideoFrames);
    await page.evaluate((to) => {
      const video = document.querySelector('video');
      window.joins = { waiting: [], resumed: false, errors: window.player.errors.length };
      video.addEventListener('seeked', () => {
        // resumed once the clock moves again after the seek
        const start = video.currentTime;
        const tick = () => { if (video.currentTime > start + 0.1) window.joins.resumed = true; else requestAnimationFrame(tick); };
        tick();
      }, { once: true });
      video.currentTime = to;
    }, t);
    await page.waitForFunction(
      (to) => window.player.fatal || document.querySelector('video').currentTime > to + 1.0,
      t, { timeout: 60000, polling: 50 },
    );
    seeks.push(await page.evaluate(([to, before]) => {
      const video = document.querySelector('video');
      const ranges = Array.from({ length: video.buffered.length }, (_, k) => [video.buffered.start(k), video.buffered.end(k)]);
      return {
        to, currentTime: video.currentTime, codec: window.videoCodec(), waiting: window.joins.waiting,
        errors: window.player.errors.slice(window.joins.errors), buffered: ranges,
        frames: video.getVideoPlaybackQuality().totalVideoFrames - before,
        videoWidth: video.videoWidth, videoHeight: video.videoHeight,
      };
    }, [t, frames]));
  }
  return { ...(await page.evaluate(() => window.player)), started, seeks };
});

// Load a storyboard's WebVTT thumbnails track as a <track kind="metadata"> of a <video> on PAGE_URL's origin,
// then every sprite sheet its cues name (resolved against the track's URL), cross-origin like a player does.
// Usage: node storyboard_track.mjs PAGE_URL TRACK_URL; prints the cues and each sheet's natural size.
import { withPage } from './chromium.mjs';

const [pageUrl, trackUrl] = process.argv.slice(2);

await withPage(async (page) => {
  await page.goto(pageUrl, { waitUntil: 'load' });
  return await page.evaluate(async (src) => {
    const video = document.createElement('video');
    video.crossOrigin = 'anonymous';
    const track = document.createElement('track');
    track.kind = 'metadata';
    track.src = src;
    video.appendChild(track);
    document.body.appendChild(video);
    const loaded = new Promise((resolve, reject) => {
      track.addEventListener('load', resolve);
      track.addEventListener('error', () => reject(new Error(`track did not load: ${src}`)));
    });
    track.track.mode = 'hidden';
    await loaded;
    const cues = Array.from(track.track.cues, (c) => ({ start: c.startTime, end: c.endTime, text: c.text }));
    const sheets = {};
    for (const cue of cues) {
      const name = cue.text.split('#')[0];
      if (name in sheets) continue;
      const image = new Image();
      image.crossOrigin = 'anonymous';
      image.src = new URL(name, src).href;
      await image.decode();
      sheets[name] = [image.naturalWidth, image.naturalHeight];
    }
    return { readyState: track.readyState, cues, sheets };
  }, trackUrl);
});

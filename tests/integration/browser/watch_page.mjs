// Open a job's watch page (vodflow's own, at WATCH_URL), turn on the caption track labelled CAPTION, press Play,
// wait for playback past 1 s with a caption cue showing, pick the top rung from the Quality menu, then hover the
// seek bar at 60 % of its width; then pick the second source (the ladder's HLS master, hls.js) and play it.
// Report the cue, the rung shown, the preview tile's style, the storyboard cues the page read, the menus, the
// HLS playback, every URL the page requested and any Content-Security-Policy complaint.
// With SCREENSHOT, a picture of the page while the preview shows.
// Usage: node watch_page.mjs WATCH_URL CAPTION [SCREENSHOT]
import { withPage } from './chromium.mjs';

const [watchUrl, caption, screenshot] = process.argv.slice(2);

await withPage(async (page) => {
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  const violations = [];
  page.on('console', (m) => { if (/Content.Security.Policy/i.test(m.text())) violations.push(m.text().slice(0, 300)); });
  const response = await page.goto(watchUrl, { waitUntil: 'load' });
  if (!response.ok()) return { pageStatus: response.status() };
  // dash.js has read the MPD: its caption tracks are in the menu
  await page.waitForFunction(() => document.querySelectorAll('#captions option').length > 1, null, { timeout: 120000 });
  const options = (id) => page.$$eval(`#${id} option`, (os) => os.map((o) => o.textContent));
  const menus = { source: await options('source'), rung: await options('rung'), audio: await options('audio'), captions: await options('captions') };
  await page.selectOption('#captions', { label: caption });
  await page.click('#play');
  await page.waitForFunction(() => {
    const video = document.querySelector('video');
    const p = window.vodflowPlayer;
    const showing = Array.from(video.textTracks).some((t) => t.mode === 'showing' && t.activeCues && t.activeCues.length);
    return p.errors.length || (video.currentTime > 1.0 && showing);
  }, null, { timeout: 120000, polling: 100 });
  const played = await page.evaluate(() => {
    const video = document.querySelector('video');
    const track = Array.from(video.textTracks).find((t) => t.mode === 'showing' && t.activeCues && t.activeCues.length);
    return {
      errors: window.vodflowPlayer.errors,
      kind: window.vodflowPlayer.kind,
      currentTime: video.currentTime,
      cue: track ? { language: track.language, text: track.activeCues[0].text } : null,
    };
  });
  const rungs = (await options('rung')).length;
  await page.selectOption('#rung', String(rungs - 2)); // the last of Auto, 0, 1, ...
  await page.waitForFunction((top) => {
    const video = document.querySelector('video');
    return window.vodflowPlayer.errors.length || (video.videoHeight === top && document.getElementById('playing').textContent.includes(`x${top}`));
  }, 360, { timeout: 60000, polling: 100 });
  const switched = await page.evaluate(() => ({
    playing: document.getElementById('playing').textContent,
    videoHeight: document.querySelector('video').videoHeight,
  }));
  const box = await page.locator('#seekbar').boundingBox();
  const fraction = 0.6;
  await page.mouse.move(box.x + box.width * fraction, box.y + box.height / 2);
  await page.waitForSelector('#preview:not([hidden])', { timeout: 10000 });
  const preview = await page.evaluate(() => {
    const image = document.getElementById('preview-image');
    const style = getComputedStyle(image);
    return {
      visible: !document.getElementById('preview').hidden && image.offsetWidth > 0,
      backgroundImage: style.backgroundImage,
      backgroundPosition: style.backgroundPosition,
      width: image.offsetWidth,
      height: image.offsetHeight,
      time: document.getElementById('preview-time').textContent,
      duration: document.querySelector('video').duration,
    };
  });
  if (screenshot) {
    await page.waitForTimeout(300); // the clock's next tick
    await page.screenshot({ path: screenshot, fullPage: true });
  }
  const storyboard = await page.evaluate(() => window.vodflowPlayer.storyboard);
  const listed = await page.evaluate(() => ({
    files: Array.from(document.querySelectorAll('#files a'), (a) => [a.textContent, a.href]),
    thumbnails: Array.from(document.querySelectorAll('#thumbnails img'), (i) => [i.src, i.naturalWidth, i.naturalHeight]),
    quality: Array.from(document.querySelectorAll('#quality tbody tr'), (tr) => Array.from(tr.cells, (c) => c.textContent)),
  }));
  await page.mouse.move(0, 0);
  await page.selectOption('#source', '1');
  await page.waitForFunction(() => document.querySelectorAll('#rung option').length > 1, null, { timeout: 60000 });
  await page.click('#play');
  await page.waitForFunction(() => window.vodflowPlayer.errors.length || document.querySelector('video').currentTime > 1.0, null, { timeout: 60000, polling: 100 });
  const hls = await page.evaluate(() => ({
    kind: window.vodflowPlayer.kind,
    errors: window.vodflowPlayer.errors,
    currentTime: document.querySelector('video').currentTime,
    rung: Array.from(document.querySelectorAll('#rung option'), (o) => o.textContent),
    captions: Array.from(document.querySelectorAll('#captions option'), (o) => o.textContent),
  }));
  return { ...played, switched, menus, fraction, preview, storyboard, listed, hls, requests, violations };
});

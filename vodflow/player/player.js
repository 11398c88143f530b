// vodflow's watch page: plays one job's published outputs. Its data comes from ./job.json (the job's published
// URLs and meta only); HLS plays with hls.js, DASH (a CMAF ladder's MPD) with dash.js, MP4s natively. Text
// from the job is only ever set as textContent, URLs only as src/href/CSS url() of http(s) URLs.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const video = $('video');
  // What the page is doing, for a look from the console (and the browser tests).
  const state = { view: null, sources: [], source: -1, kind: null, errors: [], storyboard: [] };
  window.vodflowPlayer = state;
  let engine = null; // the Hls or dash.js MediaPlayer now attached

  const httpUrl = (url) => {
    try {
      const parsed = new URL(url, location.href);
      return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : null;
    } catch (e) {
      return null;
    }
  };
  const clock = (seconds) => {
    const s = Math.max(0, Math.floor(seconds || 0));
    const hms = [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60];
    const mmss = `${hms[1]}:${String(hms[2]).padStart(2, '0')}`;
    return hms[0] ? `${hms[0]}:${mmss.padStart(5, '0')}` : mmss;
  };
  const bytes = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.round(n / 1e3)} kB`);
  const say = (text) => { $('status').textContent = text; };
  const fail = (text) => { state.errors.push(text); say(`Playback error: ${text}`); };
  const element = (tag, text) => {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const fill = (select, options, chosen) => {
    select.replaceChildren(...options.map(([value, label]) => {
      const option = element('option', label);
      option.value = String(value);
      return option;
    }));
    select.value = String(chosen);
    select.disabled = options.length < 2;
  };
  const duration = () => (Number.isFinite(video.duration) && video.duration) || (state.view && state.view.duration) || 0;

  // ---- the engines: each gives rungs, audio and caption tracks, and switches between them
  function detach() {
    if (engine && engine.destroy) engine.destroy();
    else if (engine && engine.reset) engine.reset();
    engine = null;
    video.querySelectorAll('track').forEach((t) => t.remove());
    video.removeAttribute('src');
    video.load();
    fill($('rung'), [], 0);
    fill($('audio'), [], 0);
    fill($('captions'), [[-1, 'Off']], -1);
    $('playing').textContent = '';
  }

  function playHls(url) {
    if (!window.Hls || !Hls.isSupported()) {
      if (video.canPlayType('application/vnd.apple.mpegurl')) { video.src = url; return; }
      fail('this browser has no Media Source Extensions for hls.js');
      return;
    }
    const hls = new Hls({ enableWorker: false, capLevelToPlayerSize: false });
    engine = hls;
    hls.on(Hls.Events.ERROR, (_, data) => { if (data.fatal) fail(`${data.type}/${data.details}`); });
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      fill($('rung'), [[-1, 'Auto'], ...hls.levels.map((l, i) => [i, `${l.height}p (${l.width}x${l.height}, ${Math.round(l.bitrate / 1000)} kbit/s)`])], -1);
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_, data) => {
      const level = hls.levels[data.level];
      $('playing').textContent = level ? `playing ${level.width}x${level.height}` : '';
    });
    hls.on(Hls.Events.AUDIO_TRACKS_UPDATED, (_, data) => {
      fill($('audio'), data.audioTracks.map((t, i) => [i, t.name || t.lang || `track ${i + 1}`]), hls.audioTrack);
    });
    hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, (_, data) => {
      hls.subtitleTrack = -1;
      fill($('captions'), [[-1, 'Off'], ...data.subtitleTracks.map((t, i) => [i, t.name || t.lang])], -1);
    });
    state.choose = {
      rung: (i) => { hls.currentLevel = i; },
      audio: (i) => { hls.audioTrack = i; },
      captions: (i) => { hls.subtitleTrack = i; hls.subtitleDisplay = i >= 0; },
    };
    hls.loadSource(url);
    hls.attachMedia(video);
  }

  function playDash(url) {
    if (!window.dashjs) { fail('dash.js did not load'); return; }
    const dash = dashjs.MediaPlayer().create();
    engine = dash;
    const events = dashjs.MediaPlayer.events;
    dash.updateSettings({ streaming: { text: { defaultEnabled: false } } });
    dash.on(events.ERROR, (e) => fail(`${e.error && (e.error.code || e.error.message || e.error)}`));
    let texts = [];
    dash.on(events.STREAM_INITIALIZED, () => {
      const rungs = dash.getRepresentationsByType('video');
      fill($('rung'), [[-1, 'Auto'], ...rungs.map((r, i) => [i, `${r.height}p (${r.width}x${r.height}, ${Math.round(r.bandwidth / 1000)} kbit/s)`])], -1);
      const audio = dash.getTracksFor('audio');
      const current = dash.getCurrentTrackFor('audio');
      const label = (t, i) => (t.labels && t.labels[0] && t.labels[0].text) || t.lang || `track ${i + 1}`;
      fill($('audio'), audio.map((t, i) => [i, label(t, i)]), Math.max(0, audio.indexOf(current)));
      texts = dash.getTracksFor('text');
      fill($('captions'), [[-1, 'Off'], ...texts.map((t, i) => [i, label(t, i)])], -1);
    });
    dash.on(events.QUALITY_CHANGE_RENDERED, (e) => {
      if (e.mediaType === 'video' && e.newRepresentation) {
        $('playing').textContent = `playing ${e.newRepresentation.width}x${e.newRepresentation.height}`;
      }
    });
    state.choose = {
      rung: (i) => {
        dash.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: i < 0 } } } });
        if (i >= 0) dash.setRepresentationForTypeByIndex('video', i, true);
      },
      audio: (i) => { dash.setCurrentTrack(dash.getTracksFor('audio')[i]); },
      captions: (i) => {
        dash.enableText(i >= 0);
        if (i < 0) return;
        const chosen = texts[i];
        dash.setCurrentTrack(chosen);
        // dash.js adds a native text track per text set; the chosen one is shown, the others not
        for (const track of video.textTracks) {
          if (track.kind === 'subtitles' || track.kind === 'captions') {
            track.mode = track.language === chosen.lang ? 'showing' : 'disabled';
          }
        }
      },
    };
    dash.initialize(video, url, false);
  }

  function playMp4(url) {
    state.choose = {
      rung: () => {},
      audio: () => {},
      captions: (i) => {
        Array.from(video.textTracks).forEach((t, k) => { t.mode = k === i ? 'showing' : 'disabled'; });
      },
    };
    const captions = state.view.captions;
    for (const caption of captions) {
      const track = element('track');
      track.kind = 'subtitles';
      track.src = caption.url;
      track.srclang = caption.language;
      track.label = caption.label || caption.language;
      video.append(track);
    }
    fill($('captions'), [[-1, 'Off'], ...captions.map((c, i) => [i, c.label || c.language])], -1);
    video.src = url;
  }

  function choose(index) {
    const source = state.sources[index];
    if (!source) return;
    detach();
    state.source = index;
    state.kind = source.kind;
    ({ hls: playHls, dash: playDash, mp4: playMp4 })[source.kind](source.url);
  }

  // ---- the seek bar, with the storyboard's frame under the pointer
  async function loadStoryboard(board) {
    const response = await fetch(board.url, { credentials: 'omit' });
    if (!response.ok) return;
    const text = await response.text();
    const seconds = (t) => t.split(':').reduce((total, part) => total * 60 + Number(part), 0);
    for (const block of text.split(/\r?\n\r?\n/)) {
      const lines = block.split(/\r?\n/).filter(Boolean);
      const at = lines.findIndex((l) => l.includes('-->'));
      if (at < 0 || !lines[at + 1]) continue;
      const [start, end] = lines[at].split('-->').map((t) => seconds(t.trim().split(/\s/)[0]));
      const [ref, fragment] = lines[at + 1].trim().split('#xywh=');
      const url = httpUrl(new URL(ref, board.url).href);
      const xywh = (fragment || '').split(',').map(Number);
      if (!url || xywh.length !== 4 || xywh.some((n) => !Number.isInteger(n) || n < 0)) continue;
      state.storyboard.push({ start, end, url, x: xywh[0], y: xywh[1], w: xywh[2], h: xywh[3] });
    }
  }

  function preview(event) {
    const bar = $('seekbar').getBoundingClientRect();
    const fraction = Math.min(1, Math.max(0, (event.clientX - bar.left) / bar.width));
    const time = fraction * duration();
    const tile = state.storyboard.find((c) => c.start <= time && time < c.end) || state.storyboard[state.storyboard.length - 1];
    const box = $('preview');
    const image = $('preview-image');
    if (tile) {
      image.style.width = `${tile.w}px`;
      image.style.height = `${tile.h}px`;
      image.style.backgroundImage = `url("${tile.url}")`;
      image.style.backgroundPosition = `-${tile.x}px -${tile.y}px`;
    }
    image.hidden = !tile;
    $('preview-time').textContent = clock(time);
    box.hidden = false;
    const width = box.offsetWidth;
    box.style.left = `${Math.min(bar.width - width, Math.max(0, event.clientX - bar.left - width / 2))}px`;
  }

  function wireControls() {
    const seekbar = $('seekbar');
    let dragging = false;
    seekbar.addEventListener('input', () => { dragging = true; });
    seekbar.addEventListener('change', () => { video.currentTime = Number(seekbar.value); dragging = false; });
    seekbar.addEventListener('mousemove', preview);
    seekbar.addEventListener('mouseleave', () => { $('preview').hidden = true; });
    const tick = () => {
      seekbar.max = String(duration());
      if (!dragging) seekbar.value = String(video.currentTime);
      $('clock').textContent = `${clock(video.currentTime)} / ${clock(duration())}`;
      $('play').textContent = video.paused ? 'Play' : 'Pause';
    };
    ['timeupdate', 'durationchange', 'play', 'pause', 'seeked', 'loadedmetadata'].forEach((e) => video.addEventListener(e, tick));
    setInterval(tick, 250);
    $('play').addEventListener('click', () => {
      if (video.paused) video.play().catch((e) => fail(`play(): ${e.name}`));
      else video.pause();
    });
    video.addEventListener('click', () => $('play').click());
    $('mute').addEventListener('click', () => {
      video.muted = !video.muted;
      $('mute').textContent = video.muted ? 'Unmute' : 'Mute';
    });
    $('fullscreen').addEventListener('click', () => $('stage').requestFullscreen().catch(() => {}));
    $('source').addEventListener('change', (e) => choose(Number(e.target.value)));
    for (const what of ['rung', 'audio', 'captions']) {
      $(what).addEventListener('change', (e) => state.choose && state.choose[what](Number(e.target.value)));
    }
  }

  // ---- the job's files, thumbnails and quality figures
  function showFiles(view) {
    const list = $('files');
    const link = (url, label) => {
      const a = element('a', label);
      a.href = url;
      a.rel = 'noreferrer';
      return a;
    };
    const item = (...children) => { const li = element('li'); li.append(...children); list.append(li); };
    view.ladders.forEach((l) => {
      item(link(l.hls, `${l.format.toUpperCase()} ladder: HLS master`));
      if (l.dash) item(link(l.dash, `${l.format.toUpperCase()} ladder: DASH manifest`));
    });
    view.videos.forEach((v) => item(link(v.url, `MP4 ${v.width}x${v.height}`), ` (${bytes(v.size)})`));
    view.captions.forEach((c) => item(link(c.url, `Captions: ${c.label || c.language}`), ` (${c.language})`));
    if (view.storyboard) item(link(view.storyboard.url, 'Storyboard (WebVTT thumbnails)'));
    if (view.chapters) item(link(view.chapters.url, 'Chapters (WebVTT)'));
    $('files-section').hidden = !list.children.length;

    view.images.forEach((i) => {
      const img = element('img');
      img.src = i.url;
      if (i.width && i.height) {
        img.width = i.width;
        img.height = i.height;
      }
      img.alt = 'thumbnail';
      const a = link(i.url, '');
      a.append(img);
      $('thumbnails').append(a);
    });
    $('thumbnails-section').hidden = !view.images.length;

    const body = $('quality').tBodies[0];
    const number = (n, digits) => (typeof n === 'number' ? n.toFixed(digits) : '—');
    const row = (name, codec, width, height, q) => {
      if (!q) return;
      const tr = element('tr');
      tr.append(...[name, codec, `${width}x${height}`, number(q.ssim, 4), number(q.psnr, 2), number(q.vmaf, 2)].map((t) => element('td', t)));
      body.append(tr);
    };
    view.ladders.forEach((l) => l.rungs.forEach((r) => row(`${l.format} ${r.name}`, r.codec, r.width, r.height, r.quality)));
    view.videos.forEach((v) => row(`MP4 ${v.height}p`, '—', v.width, v.height, v.quality));
    $('quality-section').hidden = !body.children.length;
  }

  async function start() {
    const base = location.pathname.replace(/\/+$/, '');
    $('job-id').textContent = decodeURIComponent(base.split('/').pop());
    wireControls();
    let view;
    try {
      const response = await fetch(`${base}/job.json`, { credentials: 'omit', cache: 'no-store' });
      if (!response.ok) throw new Error(response.status === 404 ? 'no such job' : `HTTP ${response.status}`);
      view = await response.json();
    } catch (e) {
      say(`Cannot load the job: ${e.message}`);
      return;
    }
    state.view = view;
    for (const l of view.ladders) {
      const name = l.format.toUpperCase();
      if (l.dash && httpUrl(l.dash)) state.sources.push({ kind: 'dash', url: l.dash, label: `${name} ladder, DASH (dash.js)` });
      if (httpUrl(l.hls)) state.sources.push({ kind: 'hls', url: l.hls, label: `${name} ladder, HLS (hls.js)` });
    }
    for (const v of view.videos) {
      if (httpUrl(v.url)) state.sources.push({ kind: 'mp4', url: v.url, label: `MP4 ${v.width}x${v.height}` });
    }
    fill($('source'), state.sources.map((s, i) => [i, s.label]), 0);
    showFiles(view);
    const statusText = view.status === 'completed' ? 'Completed.' : `The job is ${view.status}: what it published so far.`;
    say(state.sources.length ? statusText : `${statusText} Nothing to play yet.`);
    if (view.storyboard && httpUrl(view.storyboard.url)) loadStoryboard(view.storyboard).catch(() => {});
    if (state.sources.length) choose(0);
  }

  start();
})();

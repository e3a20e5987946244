/* STN Lab's live main view: draws frames computed by the server, over one WebSocket.
 *
 * The page (Python, stn_lab/views/main_view.py) renders the empty view once; this script
 * fills it. Every slider movement sends the nine control values on the socket; the server
 * answers with theta, the grid's polylines, the two small images and both models'
 * probabilities (stn_lab/live.py: frame_payloads, sent as binary by frame_messages), and
 * this script only draws them: the
 * pictures on <canvas> at their own pixel size (scaled crisply by CSS), the grid as SVG.
 * At most MAX_IN_FLIGHT requests are in flight (one: two were measured slower on a 2-core
 * machine, where the second only queued behind the first); past that, movement only marks
 * the view dirty, and the newest values go out when an answer arrives. The server keeps
 * only each browser's newest request and may never answer one it replaced: a frame
 * answers every request sent before it.
 *
 * If the socket cannot open (a proxy that blocks WebSockets), frames go through Gradio's
 * own event path instead (the /live_frame API endpoint, same payload), and the status
 * line says so.
 *
 * The "Several digits" and "Two digits summed" views use the same socket while one of their
 * digits is moved (VIEWS below): each slider input sends the view's request (what the
 * server last drew, from a data-* attribute, with the sliders' values), one in flight at a
 * time per view, and the answer's three pictures replace the view's. Without the socket
 * these views redraw when the slider is released (a Gradio event).
 */
(() => {
  "use strict";
  const MAX_IN_FLIGHT = { socket: 1, fallback: 1 };
  const state = {
    digit: null, model: null, ranges: {}, socket: null, mode: "connecting", dirty: false,
    known: {}, seq: 0, drawnSeq: 0, digitSeq: 0, sentAt: new Map(), redraws: 0, latencies: [], lastFrame: null, fallbackReason: "",
  };

  const $ = (id) => document.getElementById(id);

  function controlInput(name) {
    const box = $("stn-ctl-" + name);
    if (!box) return null;
    if (name === "clutter") return box.querySelector("input[type=checkbox]");
    return box.querySelector("input[type=range]") || box.querySelector("input[type=number]");
  }

  // A control's value is read from the page; one not in the page yet (in the closed
  // "more distortions" accordion, never opened) has the value Python last gave it. The
  // controls are the ones Python names in set() (stn_core.controls.CONTROL_NAMES): this
  // file keeps no list of its own. Before the first set() there is no digit to draw.
  function readControls() {
    const values = {};
    for (const name of Object.keys(state.known)) {
      const input = controlInput(name);
      if (!input) {
        if (name in state.known) values[name] = state.known[name];
        continue;
      }
      const value = name === "clutter" ? input.checked : parseFloat(input.value);
      if (name === "clutter" || Number.isFinite(value)) values[name] = value;
    }
    return values;
  }

  // -- transport ---------------------------------------------------------------------------

  function socketUrl() {
    const base = new URL(".", window.location.href);
    base.protocol = base.protocol === "https:" ? "wss:" : "ws:";
    return new URL("live", base).href;
  }

  function connect() {
    let opened = false;
    let socket;
    try {
      socket = new WebSocket(socketUrl());
    } catch (error) {
      fallBack("WebSockets are not available here");
      return;
    }
    state.socket = socket;
    // A busy page can hold the main thread for seconds while Gradio starts: the socket may
    // be open before this script hears of it, so look at its state, not at onopen alone.
    const timer = setTimeout(() => {
      if (!opened && socket.readyState !== WebSocket.OPEN) { socket.close(); fallBack("the live socket did not open"); }
    }, 10000);
    socket.binaryType = "arraybuffer";  // frames come as binary messages (decodeFrame)
    socket.onopen = () => { opened = true; clearTimeout(timer); };
    socket.onmessage = (event) => {
      let message;
      try {
        message = event.data instanceof ArrayBuffer ? decodeFrame(event.data) : JSON.parse(event.data);
      } catch (error) { return; }
      if (message.type === "ready") {
        state.mode = "socket";
        setStatus("");
        if (state.digit) socket.send(JSON.stringify({ type: "digit", digit: state.digit }));
        request();
      } else if (message.type === "frame") {
        received(message);
      } else if (message.type in VIEWS) {
        viewReceived(message.type, message);
      } else if (message.type === "error" && message.view) {
        viewReceived(message.view, null, message.message);
      } else if (message.type === "error") {
        answered(message.seq);
        showNotice(message.message);
        if (state.dirty) request();
      } else if (message.type === "busy") {
        fallBack(message.message);
      }
    };
    socket.onclose = () => {
      clearTimeout(timer);
      if (state.mode === "socket") {  // it worked before: try again shortly
        state.mode = "connecting";
        state.sentAt.clear();
        setStatus("reconnecting the live view…");
        setTimeout(connect, 1000);
      } else if (state.mode === "connecting" && opened) {
        fallBack("the live socket closed");
      } else if (!opened) {
        fallBack("the live socket could not open");
      }
    };
  }

  // A binary frame (stn_lab/live.py, frame_messages): uint32 header length, the JSON header,
  // then the grid as float32 [x, y] points, the input's and the output's uint8 pixels.
  const utf8 = new TextDecoder();
  function decodeFrame(buffer) {
    const size = new DataView(buffer).getUint32(0, true);
    const frame = JSON.parse(utf8.decode(new Uint8Array(buffer, 4, size)));
    const [lines, points] = frame.grid_shape;
    let start = 4 + size;  // a multiple of 4: the server pads the header
    const flat = new Float32Array(buffer, start, lines * points * 2);
    frame.grid = [];
    for (let l = 0; l < lines; l++) {
      const line = [];
      for (let p = 0; p < points; p++) { const k = 2 * (l * points + p); line.push([flat[k], flat[k + 1]]); }
      frame.grid.push(line);
    }
    start += flat.byteLength;
    frame.canvas = new Uint8Array(buffer, start, frame.canvas_size * frame.canvas_size);
    frame.warped = new Uint8Array(buffer, start + frame.canvas.length, frame.warped_size * frame.warped_size);
    return frame;
  }

  function fallBack(reason) {
    if (state.mode === "fallback") return;
    state.mode = "fallback";
    state.sentAt.clear();
    state.fallbackReason = reason;
    setStatus("Live channel unavailable (" + reason + "): using Gradio's slower event path.");
    request();
  }

  function request() {
    if (!state.digit || !state.model) return;
    if (state.sentAt.size >= (MAX_IN_FLIGHT[state.mode] || 1)) { state.dirty = true; return; }
    state.dirty = false;
    const seq = ++state.seq;
    const controls = readControls();
    if (state.mode === "socket" && state.socket && state.socket.readyState === 1) {
      state.sentAt.set(seq, performance.now());
      state.socket.send(JSON.stringify({ type: "frame", seq, model: state.model, controls }));
    } else if (state.mode === "fallback") {
      state.sentAt.set(seq, performance.now());
      callGradio(seq, controls);
    }
    showRangeNote(controls);
  }

  async function callGradio(seq, controls) {
    // Gradio's HTTP API: POST starts the event, GET streams its result as server-sent events.
    const root = new URL(".", window.location.href).href;
    const args = [state.digit, state.model, JSON.stringify(controls)];
    try {
      const start = await fetch(root + "gradio_api/call/live_frame", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ data: args }),
      });
      const { event_id } = await start.json();
      const stream = await fetch(root + "gradio_api/call/live_frame/" + event_id);
      const text = await readUntilComplete(stream);
      const match = text.match(/event: complete\s*\ndata: (.*)/);
      if (!match) throw new Error("no result");
      const payload = JSON.parse(match[1])[0];
      payload.seq = seq;
      if (payload.type === "error") { answered(seq); showNotice(payload.message); return; }
      received(payload);
    } catch (error) {
      answered(seq);
      setStatus("The server did not answer; retrying…");
      setTimeout(request, 1000);
    }
  }

  // Read the event stream only until its "complete" event, not until the server closes it.
  async function readUntilComplete(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let text = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return text;
      text += decoder.decode(value, { stream: true });
      if (/event: complete\s*\ndata: .*\n/.test(text)) { reader.cancel(); return text; }
    }
  }

  // Requests up to ``seq`` are settled: answered, or replaced on the server by a newer one.
  function answered(seq) {
    if (typeof seq !== "number") { state.sentAt.clear(); return; }
    for (const pending of [...state.sentAt.keys()]) if (pending <= seq) state.sentAt.delete(pending);
  }

  function received(frame) {
    const sent = state.sentAt.get(frame.seq);
    if (sent !== undefined) {
      state.latencies.push(performance.now() - sent);
      if (state.latencies.length > 2000) state.latencies.splice(0, 1000);
    }
    answered(frame.seq);
    // Never draw an older frame over a newer one, nor a frame of a digit no longer there.
    if (state.digit && (typeof frame.seq !== "number" || (frame.seq > state.drawnSeq && frame.seq >= state.digitSeq))) {
      if (typeof frame.seq === "number") state.drawnSeq = frame.seq;
      draw(frame);
    }
    if (state.dirty) request();
  }

  // -- drawing -------------------------------------------------------------------------------

  // ``pixels``: a Uint8Array (socket frames) or base64 (the fallback's JSON frames).
  function drawImage(canvas, pixels, size) {
    if (!canvas) return;
    const bytes = typeof pixels === "string" ? Uint8Array.from(atob(pixels), (c) => c.charCodeAt(0)) : pixels;
    if (canvas.width !== size) { canvas.width = size; canvas.height = size; }
    const context = canvas.getContext("2d");
    const image = context.createImageData(size, size);
    for (let i = 0; i < bytes.length; i++) {
      const v = bytes[i];
      image.data[4 * i] = v; image.data[4 * i + 1] = v; image.data[4 * i + 2] = v; image.data[4 * i + 3] = 255;
    }
    context.putImageData(image, 0, 0);
  }

  function drawGrid(svg, lines, controlPoints) {
    if (!svg) return;
    const half = lines.length / 2;
    let markup = "";
    lines.forEach((line, i) => {
      const outline = i % half === 0 || i % half === half - 1;
      const points = line.map((p) => p[0] + "," + p[1]).join(" ");
      markup += '<polyline class="' + (outline ? "stn-outline" : "stn-lattice") + '" points="' + points + '"/>';
    });
    if (controlPoints) {
      for (let i = 0; i < controlPoints.length; i += 2) {
        markup += '<circle class="stn-control-point" cx="' + controlPoints[i] + '" cy="' + controlPoints[i + 1] + '" r="0.035"/>';
      }
    }
    svg.innerHTML = markup;
  }

  function drawAnswer(prefix, probs) {
    const box = $(prefix);
    if (!box) return;
    if (!probs) { box.hidden = true; return; }
    box.hidden = false;
    const order = probs.map((p, d) => [p, d]).sort((a, b) => b[0] - a[0]).slice(0, 3);
    const top = box.querySelector(".stn-top");
    top.textContent = order[0][1] + " · " + Math.round(100 * order[0][0]) + "%";
    const bars = box.querySelector(".stn-bars");
    bars.innerHTML = order.map(([p, d]) =>
      '<div class="stn-bar"><span class="stn-bar-digit">' + d + '</span><span class="stn-bar-track"><span class="stn-bar-fill" style="width:' +
      (100 * p).toFixed(1) + '%"></span></span><span class="stn-bar-value">' + (100 * p).toFixed(1) + "%</span></div>").join("");
  }

  function draw(frame) {
    state.lastFrame = frame;
    drawImage($("stn-input"), frame.canvas, frame.canvas_size);
    drawImage($("stn-warped"), frame.warped, frame.warped_size);
    drawGrid($("stn-grid"), frame.grid, frame.transform === "tps" ? frame.theta : null);
    drawAnswer("stn-answer-st", frame.st);
    drawAnswer("stn-answer-cnn", frame.cnn);
    const words = $("stn-theta");
    if (words) words.textContent = "θ: " + frame.theta_words;
    const view = $("stn-live-view");
    if (view) { view.dataset.frames = String(++state.redraws); view.classList.remove("stn-empty"); }
    setStatus(state.mode === "fallback" ? state.status : "");
  }

  function clearView(message) {
    for (const id of ["stn-input", "stn-warped"]) {
      const canvas = $(id);
      if (canvas) canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
    }
    const svg = $("stn-grid");
    if (svg) svg.innerHTML = "";
    for (const id of ["stn-answer-st", "stn-answer-cnn"]) {
      const box = $(id);
      if (box) { box.querySelector(".stn-top").textContent = "–"; box.querySelector(".stn-bars").innerHTML = ""; }
    }
    const words = $("stn-theta");
    if (words) words.textContent = message || "";
    const view = $("stn-live-view");
    if (view) view.classList.add("stn-empty");
  }

  // The status line may not exist yet (this script runs before Gradio renders the page):
  // the text is kept and shown again with every frame.
  function setStatus(text) {
    state.status = text;
    const line = $("stn-status");
    if (line) { line.textContent = text; line.hidden = !text; }
  }

  function showNotice(text) {
    const words = $("stn-theta");
    if (words) words.textContent = text;
  }

  // -- trained range on the sliders ------------------------------------------------------------

  function showRangeNote(controls) {
    const ranges = state.ranges[state.model] || {};
    const outside = [];
    for (const [name, range] of Object.entries(ranges)) {
      const input = controlInput(name);
      const box = $("stn-ctl-" + name);
      if (!input || !box || input.type !== "range") continue;
      const min = parseFloat(input.min), max = parseFloat(input.max);
      let band = box.querySelector(".stn-band");
      if (!band) {
        band = document.createElement("div");
        band.className = "stn-band";
        band.title = "the range this model was trained on";
        input.parentElement.appendChild(band);
      }
      const left = (100 * (range[0] - min)) / (max - min);
      const width = Math.max(1.5, (100 * (range[1] - range[0])) / (max - min));
      band.style.left = left + "%";
      band.style.width = width + "%";
      const value = controls[name];
      if (value < range[0] - 1e-6 || value > range[1] + 1e-6) outside.push(name.replace("_", " "));
    }
    const note = $("stn-range-note");
    if (note) {
      note.textContent = outside.length
        ? "Outside the range this model was trained on: " + outside.join(", ") + " (shaded band on each slider)."
        : "";  // the line keeps its room when empty (lab.css): the sliders never jump mid-drag
    }
  }

  // -- teaching views drawn over the socket while one of their sliders is dragged ---------------
  // Each view: the element whose data-* holds what the server last drew (its model and
  // picks), the sliders that move its digits, how a request is made from them, and which
  // of the view's elements each part of the answer replaces. One request in flight per view.

  const VIEWS = {
    scene: {  // "Several digits": three digits on one canvas, read glimpse by glimpse
      holder: "#stn-several-canvas .stn-scene", data: "scene", sliders: "#stn-several-positions", counter: "stn-several-canvas",
      parts: { canvas_html: "#stn-several-canvas .stn-scene", glimpses_html: "#stn-several-glimpses .stn-glimpses", readout_html: "#stn-several-readout .stn-readout" },
      message(data, values) {
        // The sliders show each digit's centre; the scene holds its top-left pixel.
        const xy = values.map((v) => Math.round(v) - data.half);
        const step = parseInt((document.querySelector("#stn-several-step input[type=range]") || { value: "3" }).value, 10);
        if (xy.length !== 6) return null;
        return { model: data.model, picks: data.picks, clutter_seed: data.clutter_seed, places: [[xy[0], xy[1]], [xy[2], xy[3]], [xy[4], xy[5]]], step };
      },
    },
    pair: {  // "Two digits summed": each digit's pose in its own channel
      holder: "#stn-addition-channels .stn-pair", data: "pair", sliders: "#stn-addition-poses", counter: "stn-addition-channels",
      parts: { channels_html: "#stn-addition-channels .stn-pair", outputs_html: "#stn-addition-outputs .stn-glimpses", sum_html: "#stn-addition-readout .stn-readout" },
      message(data, values) {
        if (values.length !== 8) return null;
        return { model: data.model, picks: data.picks, poses: [values.slice(0, 4), values.slice(4, 8)] };
      },
    },
  };
  const views = Object.fromEntries(Object.keys(VIEWS).map((kind) => [kind, { inFlight: false, dirty: false, seq: 0, drawn: 0, sentAt: 0, latencies: [] }]));

  function viewRequest(kind) {
    const socket = state.socket, spec = VIEWS[kind], view = views[kind];
    if (state.mode !== "socket" || !socket || socket.readyState !== 1) return;
    const holder = document.querySelector(spec.holder);
    if (!holder) return;
    if (view.inFlight) { view.dirty = true; return; }
    let data;
    try { data = JSON.parse(holder.dataset[spec.data]); } catch (error) { return; }
    const values = [...document.querySelectorAll(spec.sliders + " input[type=range]")].map((i) => parseFloat(i.value));
    if (values.some((v) => !Number.isFinite(v))) return;
    const body = spec.message(data, values);
    if (!body) return;
    view.dirty = false;
    view.inFlight = true;
    view.sentAt = performance.now();
    socket.send(JSON.stringify({ type: kind, seq: ++view.seq, ...body }));
  }

  function replace(selector, markup) {
    const old = document.querySelector(selector);
    if (old) old.outerHTML = markup;
  }

  function viewReceived(kind, answer, errorText) {
    const spec = VIEWS[kind], view = views[kind];
    if (!spec) return;
    view.inFlight = false;
    const parts = Object.entries(spec.parts);
    const readout = parts[parts.length - 1][1];  // the last part is the view's line of words
    if (answer) {
      view.latencies.push(performance.now() - view.sentAt);
      if (view.latencies.length > 2000) view.latencies.splice(0, 1000);
      for (const [key, selector] of parts) replace(selector, answer[key]);
      const counter = document.getElementById(spec.counter);
      if (counter) counter.dataset.frames = String(++view.drawn);
    } else if (errorText) {
      replace(readout, '<div class="stn-readout"><p></p></div>');
      const line = document.querySelector(readout + " p");
      if (line) line.textContent = errorText;
    }
    if (view.dirty) viewRequest(kind);
  }

  document.addEventListener("input", (event) => {
    if (!event.target.closest) return;
    for (const [kind, spec] of Object.entries(VIEWS)) if (event.target.closest(spec.sliders)) viewRequest(kind);
  }, true);

  // -- typed slider values -------------------------------------------------------------------
  // A value typed into a slider's number box is put inside the slider's range (an empty or
  // unreadable box goes back to the slider's value), and one typed into a number box inside
  // its min and max, before Gradio reads it, so a typo
  // never raises Gradio's "Value ... is less than minimum" error and the box, the slider
  // and the picture always agree.
  function clampTyped(event) {
    const box = event.target;
    if (!(box instanceof HTMLInputElement) || box.type !== "number") return;
    if (event.type === "keydown" && event.key !== "Enter") return;
    const block = box.closest(".block");
    const range = block && block.querySelector("input[type=range]");
    // A slider's box takes the slider's range; a number box of its own (the sample number,
    // the pattern seed) its min and max, and whole numbers where its step is 1.
    const limits = range || box;
    const low = limits.min === "" ? -Infinity : parseFloat(limits.min);
    const high = limits.max === "" ? Infinity : parseFloat(limits.max);
    if (!range && !Number.isFinite(low) && !Number.isFinite(high)) return;
    let typed = parseFloat(box.value);
    if (!range && box.step === "1") typed = Math.round(typed);
    const fallback = range ? parseFloat(range.value) : Math.max(low, 0);
    const value = Number.isFinite(typed) ? Math.min(high, Math.max(low, typed)) : fallback;
    if (String(value) !== box.value) {
      box.value = String(value);
      box.dispatchEvent(new Event("input", { bubbles: true }));
    }
  }
  document.addEventListener("keydown", clampTyped, true);
  document.addEventListener("change", clampTyped, true);
  document.addEventListener("blur", clampTyped, true);

  // -- entry points for the page ---------------------------------------------------------------

  window.stnLive = {
    /** Called by the page after anything Python changed: digit (base64 28x28 or ""), model
     *  slug, and the controls' values ({name: value}) as Python holds them. */
    set(digit, model, controls) {
      if (controls && typeof controls === "object") state.known = controls;
      const view = $("stn-live-view");
      if (view && view.dataset.ranges && !Object.keys(state.ranges).length) {
        try { state.ranges = JSON.parse(view.dataset.ranges); } catch (error) { /* no bands */ }
      }
      const digitChanged = (digit || null) !== state.digit;
      state.digit = digit || null;
      if (digitChanged) state.digitSeq = state.seq + 1;  // frames of earlier requests show the old digit
      if (model) state.model = model;
      if (!state.digit) { clearView("Draw, upload or pick a digit to begin."); return; }
      if (digitChanged && state.mode === "socket" && state.socket.readyState === 1) {
        state.socket.send(JSON.stringify({ type: "digit", digit: state.digit }));
      }
      request();
    },
    refresh() { request(); },
    stats() {
      const sorted = [...state.latencies].sort((a, b) => a - b);
      return { mode: state.mode, redraws: state.redraws, latencies: sorted, median: sorted[Math.floor(sorted.length / 2)] };
    },
    lastFrame() { return state.lastFrame; },
    sceneStats(kind = "scene") {
      const view = views[kind];
      const sorted = [...view.latencies].sort((a, b) => a - b);
      return { sent: view.seq, drawn: view.drawn, latencies: sorted, median: sorted[Math.floor(sorted.length / 2)] };
    },
  };

  // Slider drags: one delegated listener, robust to Gradio re-rendering its components.
  document.addEventListener("input", (event) => {
    const box = event.target.closest && event.target.closest(".stn-control");
    if (box) request();
  }, true);
  document.addEventListener("change", (event) => {
    const box = event.target.closest && event.target.closest(".stn-control");
    if (box) request();
  }, true);

  // On a phone the sliders' bar is fixed to the bottom of the screen, for the main view;
  // once the teaching views (#stn-views) reach the upper half of the screen, lab.css
  // slides the bar away, so that it covers none of them. Checked on scroll, once a frame.
  let barCheck = 0;
  function placeBar() {
    barCheck = 0;
    const bar = $("stn-sliders"), views = $("stn-views");
    if (bar && views) bar.classList.toggle("stn-away", views.getBoundingClientRect().top < window.innerHeight / 2);
  }
  const checkBar = () => { if (!barCheck) barCheck = requestAnimationFrame(placeBar); };
  window.addEventListener("scroll", checkBar, { passive: true });
  window.addEventListener("resize", checkBar);
  // The page's layout also moves without a scroll (Gradio rendering, a tab opening): check then too.
  if (window.ResizeObserver) new ResizeObserver(checkBar).observe(document.documentElement);

  if (new URLSearchParams(window.location.search).get("live") === "off") {
    state.mode = "connecting";
    setTimeout(() => fallBack("switched off by ?live=off"), 0);
  } else {
    connect();
  }
})();

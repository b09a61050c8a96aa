/* tami comparison report: synchronized playback, scrubber, draggable slice line, live time slices.
   Everything is computed from the JPEG frames next to the page; nothing is fetched from the network. */
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("tami-data").textContent);
  var W = data.width, H = data.height, T = data.labels.length;
  var ZOOM = Math.max(1, Math.floor(320 / W));  /* small frames are shown enlarged (nearest neighbour) */
  var STRIPES = [1, 2, 3, 4, 6, 8];
  var wanted = Math.round(W / Math.max(1, T));
  var state = { t: 0, axis: "x", pos: Math.floor(W / 2), playing: false, speed: 1,
                stripe: STRIPES.filter(function (v) { return v <= Math.max(1, wanted); }).pop() };
  var api = { ready: false, state: state, sliceUpdates: 0, data: data };
  window.tamiReport = api;

  var el = function (id) { return document.getElementById(id); };
  var status = el("status");
  var panels = [];

  function pad(n) { var s = String(n); while (s.length < 5) { s = "0" + s; } return s; }

  function loadImage(src) {
    return new Promise(function (resolve, reject) {
      var img = new Image();
      img.onload = function () { resolve(img); };
      img.onerror = function () { reject(new Error("cannot load " + src)); };
      img.src = src;
    });
  }

  function buildPanel(method, images) {
    var box = document.createElement("div");
    box.className = "panel";
    box.style.width = (W * ZOOM + 12) + "px";
    var name = document.createElement("div");
    name.className = "name";
    name.textContent = method.name;
    var view = document.createElement("canvas");
    view.className = "view";
    view.width = W;
    view.height = H;
    view.style.width = W * ZOOM + "px";
    var slice = document.createElement("canvas");
    slice.className = "slice";
    slice.style.width = W * ZOOM + "px";
    box.appendChild(name);
    box.appendChild(view);
    box.appendChild(slice);
    el("panels").appendChild(box);
    var cache = document.createElement("canvas");
    var panel = { method: method, images: images, view: view, slice: slice, cache: cache };
    view.addEventListener("pointerdown", function (e) { startDrag(panel, e); });
    view.addEventListener("pointermove", function (e) { moveDrag(panel, e); });
    view.addEventListener("pointerup", function (e) { endDrag(panel, e); });
    view.addEventListener("pointercancel", function (e) { endDrag(panel, e); });
    slice.addEventListener("click", function (e) { pickFrame(panel, e); });
    return panel;
  }

  function drawView(p) {
    var ctx = p.view.getContext("2d");
    ctx.drawImage(p.images[state.t], 0, 0, W, H);
    ctx.strokeStyle = "rgb(255, 0, 0)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    if (state.axis === "x") {
      ctx.moveTo(state.pos + 0.5, 0);
      ctx.lineTo(state.pos + 0.5, H);
    } else {
      ctx.moveTo(0, state.pos + 0.5);
      ctx.lineTo(W, state.pos + 0.5);
    }
    ctx.stroke();
  }

  function computeSlice(p) {
    var s = state.stripe, c = p.cache;
    var ctx;
    if (state.axis === "x") {
      c.width = T * s;
      c.height = H;
    } else {
      c.width = W;
      c.height = T * s;
    }
    ctx = c.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    for (var t = 0; t < T; t++) {
      if (state.axis === "x") {
        ctx.drawImage(p.images[t], state.pos, 0, 1, H, t * s, 0, s, H);
      } else {
        ctx.drawImage(p.images[t], 0, state.pos, W, 1, 0, t * s, W, s);
      }
    }
  }

  function drawSlice(p) {
    var s = state.stripe, c = p.cache;
    if (p.slice.width !== c.width || p.slice.height !== c.height) {
      p.slice.width = c.width;
      p.slice.height = c.height;
    }
    var ctx = p.slice.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(c, 0, 0);
    ctx.fillStyle = "rgba(255, 210, 0, 0.9)";
    if (state.axis === "x") {
      ctx.fillRect(state.t * s, 0, s, Math.max(2, Math.round(H / 60)));
      ctx.fillRect(state.t * s, H - Math.max(2, Math.round(H / 60)), s, Math.max(2, Math.round(H / 60)));
    } else {
      ctx.fillRect(0, state.t * s, Math.max(2, Math.round(W / 60)), s);
      ctx.fillRect(W - Math.max(2, Math.round(W / 60)), state.t * s, Math.max(2, Math.round(W / 60)), s);
    }
  }

  function updateSlices() {
    panels.forEach(function (p) { computeSlice(p); drawSlice(p); });
    api.sliceUpdates += 1;
    el("line-label").textContent = (state.axis === "x" ? "x = " : "y = ") +
      Math.round(state.pos * (state.axis === "x" ? data.source.width / W : data.source.height / H)) +
      " px (source)";
  }

  function render() {
    panels.forEach(function (p) { drawView(p); drawSlice(p); });
    el("scrub").value = String(state.t);
    el("frame-label").textContent = "frame " + (state.t + 1) + "/" + T + "  [" + data.labels[state.t] + "]";
  }

  function setFrame(t) {
    state.t = ((t % T) + T) % T;
    render();
  }

  function setLine(axis, pos) {
    var limit = axis === "x" ? W : H;
    state.axis = axis;
    state.pos = Math.max(0, Math.min(limit - 1, Math.round(pos)));
    el("axis").textContent = axis === "x" ? "Vertical line" : "Horizontal line";
    updateSlices();
    render();
  }

  var dragging = null, pending = null;
  function imagePos(p, e) {
    var r = p.view.getBoundingClientRect();
    return state.axis === "x" ? (e.clientX - r.left) / r.width * W : (e.clientY - r.top) / r.height * H;
  }
  function schedule(pos) {
    if (pending === null) {
      window.requestAnimationFrame(function () { var v = pending; pending = null; setLine(state.axis, v); });
    }
    pending = pos;
  }
  function startDrag(p, e) {
    dragging = p;
    p.view.setPointerCapture(e.pointerId);
    schedule(imagePos(p, e));
    e.preventDefault();
  }
  function moveDrag(p, e) {
    if (dragging === p) { schedule(imagePos(p, e)); }
  }
  function endDrag(p, e) {
    if (dragging === p) {
      dragging = null;
      if (p.view.hasPointerCapture(e.pointerId)) { p.view.releasePointerCapture(e.pointerId); }
    }
  }
  function pickFrame(p, e) {
    var r = p.slice.getBoundingClientRect();
    var f = state.axis === "x" ? (e.clientX - r.left) / r.width : (e.clientY - r.top) / r.height;
    setFrame(Math.min(T - 1, Math.max(0, Math.floor(f * T))));
  }

  var last = 0;
  function tick(now) {
    if (!state.playing) { return; }
    if (now - last >= 1000 / (data.fps * state.speed)) {
      last = now;
      setFrame(state.t + 1);
    }
    window.requestAnimationFrame(tick);
  }
  function togglePlay() {
    state.playing = !state.playing;
    el("play").textContent = state.playing ? "Pause" : "Play";
    if (state.playing) { last = 0; window.requestAnimationFrame(tick); }
  }

  function wireControls() {
    var scrub = el("scrub");
    scrub.max = String(T - 1);
    scrub.addEventListener("input", function () { setFrame(parseInt(scrub.value, 10)); });
    el("play").addEventListener("click", togglePlay);
    el("prev").addEventListener("click", function () { setFrame(state.t - 1); });
    el("next").addEventListener("click", function () { setFrame(state.t + 1); });
    el("speed").addEventListener("change", function () { state.speed = parseFloat(el("speed").value); });
    el("axis").addEventListener("click", function () {
      var axis = state.axis === "x" ? "y" : "x";
      setLine(axis, (axis === "x" ? W : H) / 2);
    });
    var stripe = el("stripe");
    STRIPES.forEach(function (v) {
      var o = document.createElement("option");
      o.value = String(v);
      o.textContent = v + " px/frame";
      o.selected = v === state.stripe;
      stripe.appendChild(o);
    });
    stripe.addEventListener("change", function () {
      state.stripe = parseInt(stripe.value, 10);
      updateSlices();
      render();
    });
    document.addEventListener("keydown", function (e) {
      if (e.target && (e.target.tagName === "SELECT" || e.target.tagName === "INPUT")) { return; }
      if (e.key === " ") { togglePlay(); e.preventDefault(); }
      else if (e.key === "ArrowLeft") { setFrame(state.t - 1); }
      else if (e.key === "ArrowRight") { setFrame(state.t + 1); }
      else if (e.key === "r" || e.key === "R") { el("axis").click(); }
    });
  }

  var jobs = data.methods.map(function (m) {
    return Promise.all(data.labels.map(function (_, i) { return loadImage(m.dir + "/" + pad(i) + ".jpg"); }));
  });
  Promise.all(jobs).then(function (all) {
    panels = data.methods.map(function (m, k) { return buildPanel(m, all[k]); });
    wireControls();
    updateSlices();
    render();
    var shown = T < data.total ? T + " of " + data.total + " frames (evenly spaced)" : T + " frames";
    status.textContent = shown + " at " + W + "x" + H + ", " + data.fps.toFixed(2) + " fps; frames aligned by " +
      data.alignment + ".";
    api.ready = true;
    api.setFrame = setFrame;
    api.setLine = setLine;
  }, function (err) {
    status.textContent = "Error: " + err.message + " (keep the frames/ folder next to index.html)";
    status.className = "mono error";
    console.error(err.message);
  });
}());

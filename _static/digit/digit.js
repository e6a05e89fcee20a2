/*
 * cnnbook's drawing pad: the reader draws a digit and the book's Part I CNN
 * (chapter 6) answers, computed in this page, offline.
 *
 * Used on any page holding <div data-digit-widget></div> (chapter 6, "Your
 * own handwriting"); Jupyter Book includes every script of _static/ on every
 * page, so elsewhere this file only defines window.cnnbookDigit.
 *
 * - Weights: mnist_cnn.json beside this file, written by
 *   `cnnbook export MODEL --format web` (cnnbook.web.to_web) with its
 *   provenance; fetched only where the pad is.
 * - Preprocessing: cnnbook.web.prepare_canvas (cnnbook.images.prepare_digit's
 *   path for a canvas), step for step and in the same float32 arithmetic
 *   where it matters (thresholds, Pillow's Lanczos resampling).
 * - Forward pass: hand-written here for the layer types the Part I model uses
 *   (3x3 convolution, max pooling, batch normalisation, ReLU, flatten,
 *   dense).  Not LiteRT's web runtime or TensorFlow.js: those add hundreds of
 *   KB to MB of script and WebAssembly for a 115 KB model, would have to be
 *   vendored to work offline (no CDN), and need updating; these ~150 lines
 *   need nothing.  tests/test_digit_widget.py checks them against Keras and
 *   Python in headless Chromium.
 * Contract for tests: the canvas carries data-digit-canvas, the clear button
 * data-digit-clear, the top answer's digit data-digit-prediction.
 */
(function () {
  "use strict";

  var f32 = Math.fround;
  var script = document.currentScript;
  var WEIGHTS_URL = script ? new URL("mnist_cnn.json", script.src).href : null;
  var SIDE = 280; // the pad's pixels (whatever its size on screen)
  var LINE_WIDTH = 18; // pen width in those pixels

  // cnnbook.images' constants (tests compare them with Python's).
  var C = {
    MIN_CONTRAST: 0.08, MIN_SNR: 6.0, MAX_INK_FRACTION: 0.5,
    KEEP_FRACTION: 0.1, MIN_DIGIT_FRACTION: 0.02, BOX: 20, FIELD: 28,
    MIN_STROKE: 1.6, TARGET_STROKE: 2.7
  };

  function NoDigit(message) { this.message = message; }

  // Python's round(): halves to even.
  function roundHalfEven(x) {
    if (Math.abs(x % 1) === 0.5) { return 2 * Math.round(x / 2); }
    return Math.round(x);
  }

  function median32(a) { // np.median of a float32 array
    var s = Float32Array.from(a).sort();
    var n = s.length, m = n >> 1;
    return n % 2 ? s[m] : f32(f32(s[m - 1] + s[m]) / 2);
  }

  function box3(a, h, w) { // images._box3: float32 cumulative sums
    var W = w + 3, H = h + 3, c = new Float32Array(H * W), i, j;
    for (i = 1; i < H; i++) {
      var si = Math.min(Math.max(i - 2, 0), h - 1);
      for (j = 1; j < W; j++) {
        c[i * W + j] = a[si * w + Math.min(Math.max(j - 2, 0), w - 1)];
      }
    }
    for (i = 1; i < H; i++) { // cumsum down, then across, in float32
      for (j = 0; j < W; j++) { c[i * W + j] = f32(c[i * W + j] + c[(i - 1) * W + j]); }
    }
    for (i = 0; i < H; i++) {
      for (j = 1; j < W; j++) { c[i * W + j] = f32(c[i * W + j] + c[i * W + j - 1]); }
    }
    var out = new Float32Array(h * w);
    for (i = 0; i < h; i++) {
      for (j = 0; j < w; j++) {
        var v = f32(c[(i + 3) * W + j + 3] - c[i * W + j + 3]);
        v = f32(f32(v - c[(i + 3) * W + j]) + c[i * W + j]);
        out[i * w + j] = f32(v / 9);
      }
    }
    return out;
  }

  function components(mask, h, w) { // 8-connected: label per pixel, sizes
    var label = new Int32Array(h * w).fill(-1), sizes = [], stack = [];
    for (var p = 0; p < h * w; p++) {
      if (!mask[p] || label[p] >= 0) { continue; }
      var id = sizes.length, size = 0;
      label[p] = id; stack.push(p);
      while (stack.length) {
        var q = stack.pop(), y = (q / w) | 0, x = q - y * w;
        size++;
        for (var dy = -1; dy <= 1; dy++) {
          for (var dx = -1; dx <= 1; dx++) {
            var yy = y + dy, xx = x + dx, r = yy * w + xx;
            if (yy >= 0 && yy < h && xx >= 0 && xx < w && mask[r] && label[r] < 0) {
              label[r] = id; stack.push(r);
            }
          }
        }
      }
      sizes.push(size);
    }
    return { label: label, sizes: sizes };
  }

  function dilate(a, h, w, r) { // images._dilate: max over a (2r+1)^2 square
    var tmp = new Float32Array(h * w), out = new Float32Array(h * w), i, j, k, m;
    for (i = 0; i < h; i++) {
      for (j = 0; j < w; j++) {
        m = -Infinity;
        for (k = Math.max(0, i - r); k <= Math.min(h - 1, i + r); k++) { m = Math.max(m, a[k * w + j]); }
        tmp[i * w + j] = m;
      }
    }
    for (i = 0; i < h; i++) {
      for (j = 0; j < w; j++) {
        m = -Infinity;
        for (k = Math.max(0, j - r); k <= Math.min(w - 1, j + r); k++) { m = Math.max(m, tmp[i * w + k]); }
        out[i * w + j] = m;
      }
    }
    return out;
  }

  function strokeWidth(mask, h, w) { // images._stroke_width
    var area = 0, boundary = 0;
    for (var i = 0; i < h; i++) {
      for (var j = 0; j < w; j++) {
        if (!mask[i * w + j]) { continue; }
        area++;
        var inner = (i === 0 || mask[(i - 1) * w + j]) && (i === h - 1 || mask[(i + 1) * w + j]) &&
          (j === 0 || mask[i * w + j - 1]) && (j === w - 1 || mask[i * w + j + 1]);
        if (!inner) { boundary++; }
      }
    }
    return 2 * area / Math.max(boundary, 1);
  }

  function lanczos(x) {
    function sinc(v) { if (v === 0) { return 1; } v *= Math.PI; return Math.sin(v) / v; }
    return (-3 <= x && x < 3) ? sinc(x) * sinc(x / 3) : 0;
  }

  function coefficients(inSize, outSize) { // Pillow's precompute_coeffs
    var scale = inSize / outSize, filterscale = Math.max(scale, 1);
    var support = 3 * filterscale, ksize = Math.ceil(support) * 2 + 1;
    var bounds = new Int32Array(outSize * 2), kk = new Float64Array(outSize * ksize);
    for (var xx = 0; xx < outSize; xx++) {
      var center = (xx + 0.5) * scale, ww = 0, ss = 1 / filterscale, x;
      var xmin = Math.max(Math.trunc(center - support + 0.5), 0);
      var xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
      for (x = 0; x < xmax; x++) {
        var v = lanczos((x + xmin - center + 0.5) * ss);
        kk[xx * ksize + x] = v; ww += v;
      }
      for (x = 0; x < xmax; x++) { if (ww !== 0) { kk[xx * ksize + x] /= ww; } }
      bounds[2 * xx] = xmin; bounds[2 * xx + 1] = xmax;
    }
    return { bounds: bounds, kk: kk, ksize: ksize };
  }

  // Pillow's Image.resize(size, LANCZOS) of a mode "F" image: horizontal pass,
  // then vertical, each summed in double and stored as float32.
  function resizeLanczos(a, h, w, outH, outW) {
    var src = a, i, j, k, s, c;
    if (outW !== w) {
      c = coefficients(w, outW);
      var t = new Float32Array(h * outW);
      for (i = 0; i < h; i++) {
        for (j = 0; j < outW; j++) {
          s = 0;
          for (k = 0; k < c.bounds[2 * j + 1]; k++) { s += src[i * w + c.bounds[2 * j] + k] * c.kk[j * c.ksize + k]; }
          t[i * outW + j] = s;
        }
      }
      src = t;
    }
    if (outH !== h) {
      c = coefficients(h, outH);
      var u = new Float32Array(outH * outW);
      for (i = 0; i < outH; i++) {
        for (j = 0; j < outW; j++) {
          s = 0;
          for (k = 0; k < c.bounds[2 * i + 1]; k++) { s += src[(c.bounds[2 * i] + k) * outW + j] * c.kk[i * c.ksize + k]; }
          u[i * outW + j] = s;
        }
      }
      src = u;
    }
    return src;
  }

  function percentile75(values) { // np.percentile(..., 75), linear
    var s = Float32Array.from(values).sort(), index = 0.75 * (s.length - 1);
    var lo = Math.floor(index), hi = Math.min(lo + 1, s.length - 1), t = index - lo;
    var d = s[hi] - s[lo];
    return f32(t >= 0.5 ? s[hi] - d * (1 - t) : s[lo] + d * t);
  }

  /* cnnbook.web.prepare_canvas: ink (Float32Array, h*w, 0 = untouched) ->
     {centred: Float32Array(28*28), ...}; throws NoDigit. */
  function prepare(ink, h, w) {
    var n = h * w, i, j, p, lo = Infinity, hi = -Infinity;
    for (p = 0; p < n; p++) { lo = Math.min(lo, ink[p]); hi = Math.max(hi, ink[p]); }
    if (hi - lo < C.MIN_CONTRAST) { throw new NoDigit("Draw a digit in the box."); }
    var smooth = box3(ink, h, w), med = median32(smooth), dev = new Float32Array(n), peak = -Infinity;
    for (p = 0; p < n; p++) { dev[p] = Math.abs(f32(smooth[p] - med)); peak = Math.max(peak, smooth[p]); }
    var noise = 1.4826 * median32(dev);
    if (peak < C.MIN_CONTRAST || peak < C.MIN_SNR * noise) { throw new NoDigit("Draw a digit in the box."); }
    var threshold = f32(Math.max(0.3 * peak, 4 * noise, 0.5 * C.MIN_CONTRAST));
    var mask = new Uint8Array(n), inked = 0;
    for (p = 0; p < n; p++) { mask[p] = smooth[p] > threshold ? 1 : 0; inked += mask[p]; }
    if (inked / n > C.MAX_INK_FRACTION) { throw new NoDigit("That covers most of the box: clear it and draw one digit."); }
    var comp = components(mask, h, w), sizes = comp.sizes;
    var largest = Math.max.apply(null, sizes.concat([0])), total = sizes.reduce(function (a, b) { return a + b; }, 0);
    if (largest === 0 || (sizes.length > 50 && largest < 0.1 * total)) { throw new NoDigit("Only specks: draw a digit."); }
    var digitMask = new Uint8Array(n), kept = [];
    for (p = 0; p < n; p++) {
      if (mask[p] && sizes[comp.label[p]] >= C.KEEP_FRACTION * largest) { digitMask[p] = 1; kept.push(ink[p]); }
    }
    var level = Math.max(percentile75(kept), 1e-6), half = f32(0.5 * level), level32 = f32(level);
    var core = new Uint8Array(n), any = false;
    for (p = 0; p < n; p++) { core[p] = digitMask[p] && ink[p] >= half ? 1 : 0; any = any || core[p] === 1; }
    if (!any) { core = digitMask; }
    var y0 = h, y1 = -1, x0 = w, x1 = -1;
    for (i = 0; i < h; i++) {
      for (j = 0; j < w; j++) {
        if (core[i * w + j]) { y0 = Math.min(y0, i); y1 = Math.max(y1, i); x0 = Math.min(x0, j); x1 = Math.max(x1, j); }
      }
    }
    y1 += 1; x1 += 1;
    var longSide = Math.max(y1 - y0, x1 - x0);
    if (longSide < Math.max(4, C.MIN_DIGIT_FRACTION * Math.max(h, w))) { throw new NoDigit("Draw the digit larger."); }
    var grown = dilate(Float32Array.from(digitMask), h, w, 1);
    var ch = y1 - y0, cw = x1 - x0, cropped = new Float32Array(ch * cw), cropMask = new Uint8Array(ch * cw);
    for (i = 0; i < ch; i++) {
      for (j = 0; j < cw; j++) {
        p = (i + y0) * w + j + x0;
        var v = grown[p] > 0 ? f32(ink[p] / level32) : 0;
        cropped[i * cw + j] = Math.min(Math.max(v, 0), 1);
        cropMask[i * cw + j] = core[p];
      }
    }
    var scale = C.BOX / longSide, width = strokeWidth(cropMask, ch, cw);
    if (width * scale < C.MIN_STROKE) { // thicken a thin stroke to MNIST's width
      var r = Math.max(1, roundHalfEven((C.TARGET_STROKE / scale - width) / 2));
      var ph = ch + 2 * r, pw = cw + 2 * r, padded = new Float32Array(ph * pw);
      for (i = 0; i < ch; i++) { for (j = 0; j < cw; j++) { padded[(i + r) * pw + j + r] = cropped[i * cw + j]; } }
      cropped = dilate(padded, ph, pw, r); ch = ph; cw = pw;
    }
    var fitScale = C.BOX / Math.max(ch, cw);
    var fw = Math.max(1, roundHalfEven(cw * fitScale)), fh = Math.max(1, roundHalfEven(ch * fitScale));
    var fitted = resizeLanczos(cropped, ch, cw, fh, fw), sum = 0, sy = 0, sx = 0;
    for (i = 0; i < fh; i++) {
      for (j = 0; j < fw; j++) {
        p = i * fw + j;
        fitted[p] = Math.min(Math.max(fitted[p], 0), 1);
        sum += fitted[p]; sy += fitted[p] * i; sx += fitted[p] * j;
      }
    }
    var cy = sum > 0 ? sy / sum : (fh - 1) / 2, cx = sum > 0 ? sx / sum : (fw - 1) / 2;
    var F = C.FIELD, top = roundHalfEven(F / 2 - cy), left = roundHalfEven(F / 2 - cx);
    var centred = new Float32Array(F * F), peakOut = 0;
    for (i = Math.max(top, 0); i < Math.min(top + fh, F); i++) {
      for (j = Math.max(left, 0); j < Math.min(left + fw, F); j++) {
        centred[i * F + j] = fitted[(i - top) * fw + j - left];
        peakOut = Math.max(peakOut, centred[i * F + j]);
      }
    }
    if (peakOut <= 0) { throw new NoDigit("Draw a digit in the box."); }
    return { centred: centred, level: level, box: [y0, y1, x0, x1], fitted: [fh, fw] };
  }

  // ------------------------------------------------------------ the network
  function decode(entry) {
    var bin = atob(entry.data), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    var view = new DataView(bytes.buffer), out = new Float32Array(bytes.length / 4);
    for (var k = 0; k < out.length; k++) { out[k] = view.getFloat32(4 * k, true); }
    return { shape: entry.shape, data: out };
  }

  function loadModel(record) { // a cnnbook-web file -> layers with typed arrays
    if (record.format !== "cnnbook-web" || record.version !== 1) {
      throw new Error("not a cnnbook-web file of version 1");
    }
    var layers = record.layers.map(function (l) {
      var out = { type: l.type, name: l.name };
      Object.keys(l).forEach(function (key) {
        out[key] = (l[key] && l[key].data !== undefined) ? decode(l[key]) : l[key];
      });
      if (l.type === "batch_norm") { // per channel: y = x * scale + shift
        var c = out.gamma.data.length;
        out.scale = new Float64Array(c); out.shift = new Float64Array(c);
        for (var k = 0; k < c; k++) {
          out.scale[k] = out.gamma.data[k] / Math.sqrt(out.moving_variance.data[k] + l.epsilon);
          out.shift[k] = out.beta.data[k] - out.moving_mean.data[k] * out.scale[k];
        }
      }
      return out;
    });
    return { layers: layers, inputShape: record.input_shape, provenance: record.provenance };
  }

  function activate(x, kind) {
    if (kind === "relu") { for (var i = 0; i < x.length; i++) { if (x[i] < 0) { x[i] = 0; } } }
    return x;
  }

  // The logits for one image (HWC, Float32Array or array) -> Float64Array.
  function logits(model, image) {
    var s = model.inputShape, h = s[0], w = s[1], c = s[2], x = Float64Array.from(image);
    model.layers.forEach(function (l) {
      var i, j, k, o, out;
      if (l.type === "conv2d") {
        var kh = l.kernel.shape[0], kw = l.kernel.shape[1], co = l.kernel.shape[3], K = l.kernel.data;
        var same = l.padding === "same", pt = same ? (kh - 1) >> 1 : 0, pl = same ? (kw - 1) >> 1 : 0;
        var oh = same ? h : h - kh + 1, ow = same ? w : w - kw + 1;
        out = new Float64Array(oh * ow * co);
        for (i = 0; i < oh; i++) {
          for (j = 0; j < ow; j++) {
            var base = (i * ow + j) * co;
            if (l.bias) { for (o = 0; o < co; o++) { out[base + o] = l.bias.data[o]; } }
            for (var di = 0; di < kh; di++) {
              var y = i + di - pt;
              if (y < 0 || y >= h) { continue; }
              for (var dj = 0; dj < kw; dj++) {
                var xx = j + dj - pl;
                if (xx < 0 || xx >= w) { continue; }
                for (k = 0; k < c; k++) {
                  var v = x[(y * w + xx) * c + k], kb = ((di * kw + dj) * c + k) * co;
                  if (v === 0) { continue; }
                  for (o = 0; o < co; o++) { out[base + o] += v * K[kb + o]; }
                }
              }
            }
          }
        }
        x = activate(out, l.activation); h = oh; w = ow; c = co;
      } else if (l.type === "max_pool2d") {
        var ph = l.pool_size[0], pw = l.pool_size[1], sh = l.strides[0], sw = l.strides[1];
        var qh = Math.floor((h - ph) / sh) + 1, qw = Math.floor((w - pw) / sw) + 1;
        out = new Float64Array(qh * qw * c);
        for (i = 0; i < qh; i++) {
          for (j = 0; j < qw; j++) {
            for (k = 0; k < c; k++) {
              var m = -Infinity;
              for (var a = 0; a < ph; a++) {
                for (var b = 0; b < pw; b++) { m = Math.max(m, x[((i * sh + a) * w + j * sw + b) * c + k]); }
              }
              out[(i * qw + j) * c + k] = m;
            }
          }
        }
        x = out; h = qh; w = qw;
      } else if (l.type === "batch_norm") {
        for (i = 0; i < x.length; i++) { k = i % c; x[i] = x[i] * l.scale[k] + l.shift[k]; }
      } else if (l.type === "relu") {
        activate(x, "relu");
      } else if (l.type === "flatten") {
        c = x.length; h = 1; w = 1;
      } else if (l.type === "dense") {
        var n = l.kernel.shape[0], units = l.kernel.shape[1], D = l.kernel.data;
        out = new Float64Array(units);
        for (o = 0; o < units; o++) { out[o] = l.bias ? l.bias.data[o] : 0; }
        for (i = 0; i < n; i++) {
          if (x[i] === 0) { continue; }
          for (o = 0; o < units; o++) { out[o] += x[i] * D[i * units + o]; }
        }
        x = activate(out, l.activation); c = units; h = 1; w = 1;
      } else {
        throw new Error("unknown layer type " + l.type);
      }
    });
    return x;
  }

  function softmax(z) {
    var m = Math.max.apply(null, Array.from(z)), e = Array.from(z, function (v) { return Math.exp(v - m); });
    var s = e.reduce(function (a, b) { return a + b; }, 0);
    return e.map(function (v) { return v / s; });
  }

  function predict(model, image) { return softmax(logits(model, image)); }

  var modelPromise = null;
  function loadWeights(url) {
    if (!modelPromise || url) {
      modelPromise = fetch(url || WEIGHTS_URL).then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      }).then(loadModel);
    }
    return modelPromise;
  }

  // ------------------------------------------------------------ drawing
  // Strokes: lists of [x, y] points in pad pixels (0..SIDE).
  function drawStroke(ctx, points) {
    ctx.lineWidth = LINE_WIDTH; ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.strokeStyle = "#000"; ctx.fillStyle = "#000";
    ctx.beginPath();
    ctx.arc(points[0][0], points[0][1], LINE_WIDTH / 2, 0, 2 * Math.PI);
    ctx.fill();
    if (points.length > 1) {
      ctx.beginPath(); ctx.moveTo(points[0][0], points[0][1]);
      for (var i = 1; i < points.length; i++) { ctx.lineTo(points[i][0], points[i][1]); }
      ctx.stroke();
    }
  }

  function clearPad(ctx) { ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, SIDE, SIDE); }

  function readInk(ctx) { // 255 - red, as float32 ink in [0, 1]
    var d = ctx.getImageData(0, 0, SIDE, SIDE).data, ink = new Float32Array(SIDE * SIDE);
    for (var p = 0; p < ink.length; p++) { ink[p] = f32((255 - d[4 * p]) / 255); }
    return ink;
  }

  // Examples for the keyboard (and for readers who want to see one), in 0..1.
  var EXAMPLES = [
    [[[0.42, 0.3], [0.53, 0.2], [0.53, 0.8]]],
    [[[0.5, 0.2], [0.36, 0.3], [0.32, 0.5], [0.36, 0.7], [0.5, 0.8], [0.64, 0.7], [0.68, 0.5], [0.64, 0.3], [0.5, 0.2]]],
    [[[0.3, 0.24], [0.7, 0.24], [0.45, 0.8]]],
    [[[0.32, 0.32], [0.42, 0.22], [0.58, 0.22], [0.67, 0.32], [0.64, 0.46], [0.32, 0.78], [0.7, 0.78]]],
    [[[0.6, 0.8], [0.6, 0.2], [0.3, 0.6], [0.72, 0.6]]],
    [[[0.33, 0.27], [0.5, 0.21], [0.65, 0.29], [0.62, 0.44], [0.47, 0.5], [0.64, 0.56], [0.67, 0.71], [0.5, 0.8], [0.32, 0.74]]]
  ];

  function element(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text) { e.textContent = text; }
    return e;
  }

  function mount(root) {
    root.classList.add("cnnbook-digit");
    var pad = element("div", { "class": "cnnbook-digit__pad" });
    var canvas = element("canvas", {
      width: SIDE, height: SIDE, "data-digit-canvas": "", role: "img",
      "aria-label": "Drawing pad: draw one digit here with a mouse, a pen or a finger. " +
        "Without a pointer, use the Example button."
    });
    var buttons = element("div", { "class": "cnnbook-digit__buttons" });
    var clear = element("button", { type: "button", "data-digit-clear": "" }, "Clear");
    var example = element("button", { type: "button", "data-digit-example": "" }, "Example");
    buttons.append(clear, example);
    pad.append(canvas, buttons);

    var seen = element("figure", { "class": "cnnbook-digit__seen" });
    var input = element("canvas", {
      width: 28, height: 28, role: "img",
      "aria-label": "The 28 by 28 image the network receives"
    });
    seen.append(input, element("figcaption", {}, "What the network receives: 28×28"));

    var answer = element("div", { "class": "cnnbook-digit__answer" });
    var top = element("p", { "class": "cnnbook-digit__top" });
    var prediction = element("output", { "data-digit-prediction": "" }, "–");
    top.append(document.createTextNode("The network answers "), prediction);
    var list = element("ol", { "class": "cnnbook-digit__top3", "aria-label": "The three most probable digits" });
    var status = element("p", { "class": "cnnbook-digit__status", role: "status", "aria-live": "polite" },
      "Loading the network…");
    var live = element("p", { "class": "cnnbook-digit__sr", "aria-live": "polite" });
    answer.append(top, list, status, live);
    root.replaceChildren(pad, seen, answer);

    var ctx = canvas.getContext("2d", { willReadFrequently: true });
    var ictx = input.getContext("2d");
    clearPad(ctx);
    var model = null, scheduled = false, strokes = [], current = null, next = 0;

    function show(image, probs) {
      var px = ictx.createImageData(28, 28);
      for (var p = 0; p < 784; p++) {
        var v = image ? Math.round(image[p] * 255) : 0;
        px.data[4 * p] = px.data[4 * p + 1] = px.data[4 * p + 2] = v; px.data[4 * p + 3] = 255;
      }
      ictx.putImageData(px, 0, 0);
      list.replaceChildren();
      if (!probs) { prediction.textContent = "–"; return; }
      var order = probs.map(function (p, d) { return [p, d]; }).sort(function (a, b) { return b[0] - a[0]; });
      prediction.textContent = String(order[0][1]);
      order.slice(0, 3).forEach(function (pair) {
        var pct = (100 * pair[0]).toFixed(1) + " %";
        var li = element("li", { "aria-label": pair[1] + ": " + pct });
        var bar = element("span", { "class": "cnnbook-digit__bar", "aria-hidden": "true" });
        var fill = element("span", {});
        fill.style.width = (100 * pair[0]).toFixed(1) + "%";
        bar.append(fill);
        li.append(element("span", { "class": "cnnbook-digit__digit", "aria-hidden": "true" }, String(pair[1])),
          bar, element("span", { "class": "cnnbook-digit__pct", "aria-hidden": "true" }, pct));
        list.append(li);
      });
    }

    function update(announce) {
      scheduled = false;
      if (!model) { return; }
      try {
        var image = prepare(readInk(ctx), SIDE, SIDE).centred, probs = predict(model, image);
        show(image, probs);
        if (announce) {
          var best = probs.indexOf(Math.max.apply(null, probs));
          status.textContent = "";
          live.textContent = "The network answers " + best + " (" + (100 * probs[best]).toFixed(1) + " %).";
        }
      } catch (err) {
        if (!(err instanceof NoDigit)) { throw err; }
        show(null, null);
        status.textContent = strokes.length ? err.message : "Draw a digit in the box.";
      }
    }
    function schedule() {
      if (!scheduled) { scheduled = true; requestAnimationFrame(function () { update(false); }); }
    }

    function point(ev) {
      var r = canvas.getBoundingClientRect();
      return [(ev.clientX - r.left) * SIDE / r.width, (ev.clientY - r.top) * SIDE / r.height];
    }
    canvas.addEventListener("pointerdown", function (ev) {
      if (ev.button !== undefined && ev.button > 0) { return; }
      ev.preventDefault();
      if (canvas.setPointerCapture) { try { canvas.setPointerCapture(ev.pointerId); } catch (e) { /* synthetic */ } }
      current = [point(ev)]; strokes.push(current);
      drawStroke(ctx, current); schedule();
    });
    canvas.addEventListener("pointermove", function (ev) {
      if (!current) { return; }
      ev.preventDefault();
      var events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [];
      (events.length ? events : [ev]).forEach(function (e) {
        var last = current[current.length - 1], p = point(e);
        current.push(p); drawStroke(ctx, [last, p]);
      });
      schedule();
    });
    function end() { if (current) { current = null; update(true); } }
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    clear.addEventListener("click", function () {
      clearPad(ctx); strokes = []; current = null; show(null, null);
      status.textContent = "Cleared. Draw a digit in the box.";
    });
    example.addEventListener("click", function () {
      clearPad(ctx); strokes = [];
      EXAMPLES[next].forEach(function (s) {
        var pts = s.map(function (q) { return [q[0] * SIDE, q[1] * SIDE]; });
        strokes.push(pts); drawStroke(ctx, pts);
      });
      next = (next + 1) % EXAMPLES.length;
      update(true);
    });

    show(null, null);
    loadWeights().then(function (m) {
      model = m; root.setAttribute("data-digit-ready", "");
      status.textContent = "Draw a digit in the box.";
      update(false);
    }, function (err) {
      status.textContent = "The network's weights could not be loaded (" + err.message +
        "); the drawing pad needs the book served over http(s).";
    });
  }

  window.cnnbookDigit = {
    constants: C, prepare: prepare, loadModel: loadModel, logits: logits, predict: predict,
    loadWeights: loadWeights, drawStroke: drawStroke, clearPad: clearPad, readInk: readInk,
    roundHalfEven: roundHalfEven, NoDigit: NoDigit, SIDE: SIDE, LINE_WIDTH: LINE_WIDTH, mount: mount
  };

  function init() { document.querySelectorAll("[data-digit-widget]").forEach(mount); }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
}());

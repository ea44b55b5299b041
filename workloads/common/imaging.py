"""Pictures for the reports: CT slices with overlays, simple plots, PNG encoding and HTML embedding.

Slices are drawn with numpy alone and written by a small PNG encoder (zlib), so the reports need nothing
beyond numpy. Plots use matplotlib when it is installed, otherwise a numpy renderer (axes, ticks with a
built-in 3x5 digit font, points, lines, bars; titles and axis names go in the HTML caption).

Display conventions (radiological): arrays are RAS+ (x to the patient's right, y anterior, z superior).
Axial: anterior at the top, the patient's right on the viewer's left. Coronal: superior at the top, the
patient's right on the left. Sagittal: superior at the top, anterior on the left.
"""

import base64
import io
import struct
import zlib

import numpy as np


# --- PNG -------------------------------------------------------------------------------------------------------

def png_bytes(rgb):
    """Encodes an (H, W, 3) or (H, W) uint8 array as PNG."""
    a = np.ascontiguousarray(rgb, dtype=np.uint8)
    if a.ndim == 2:
        color, channels = 0, 1
        a = a[:, :, None]
    else:
        color, channels = 2, a.shape[2]
        if channels != 3:
            raise ValueError("png_bytes wants grey or RGB")
    h, w = a.shape[:2]
    raw = np.concatenate([np.zeros((h, 1), np.uint8), a.reshape(h, w * channels)], axis=1).tobytes()

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def data_uri(png):
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# --- slices ------------------------------------------------------------------------------------------------------

def window(hu, lo=-250.0, hi=1250.0):
    """HU -> uint8 grey in a display window (default: bone and soft tissue)."""
    return (np.clip((np.asarray(hu, np.float32) - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)


def display_plane(array3d, axis, index):
    """A 2D display image (rows top->bottom) of a RAS+ array cut at INDEX along AXIS (0 sagittal, 1 coronal,
    2 axial), with the pixel size of its rows and columns as the caller's spacing tells (see resample_square)."""
    if axis == 2:
        plane = array3d[:, :, index]  # (x, y)
    elif axis == 1:
        plane = array3d[:, index, :]  # (x, z)
    else:
        plane = array3d[index, :, :]  # (y, z)
    return plane.T[::-1, ::-1]


def plane_spacing(spacing, axis):
    """(row mm, column mm) of display_plane's image."""
    sx, sy, sz = spacing
    return {2: (sy, sx), 1: (sz, sx), 0: (sz, sy)}[axis]


def resample_square(img, row_mm, col_mm, pixel_mm=None, max_side=520):
    """Nearest-neighbour resampling to square pixels (of pixel_mm, default the finer spacing), scaled so that
    the longer side is max_side pixels."""
    pixel_mm = pixel_mm or min(row_mm, col_mm)
    h, w = img.shape[:2]
    H, W = h * row_mm / pixel_mm, w * col_mm / pixel_mm
    scale = max_side / max(H, W)
    H, W = max(1, int(round(H * scale))), max(1, int(round(W * scale)))
    ri = np.minimum((np.arange(H) + 0.5) * h / H, h - 1).astype(int)
    ci = np.minimum((np.arange(W) + 0.5) * w / W, w - 1).astype(int)
    return img[ri][:, ci]


def to_rgb(grey):
    return np.repeat(grey[:, :, None], 3, axis=2).astype(np.float32)


def blend(rgb, mask, color, alpha=0.35):
    """Tints MASK's pixels with COLOR (r, g, b 0-255)."""
    m = mask.astype(bool)
    rgb[m] = (1 - alpha) * rgb[m] + alpha * np.asarray(color, np.float32)
    return rgb


def outline(mask):
    m = mask.astype(bool)
    inner = m.copy()
    inner[1:, :] &= m[:-1, :]
    inner[:-1, :] &= m[1:, :]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    return m & ~inner


def contour(rgb, mask, color):
    rgb[outline(mask)] = color
    return rgb


LABEL_COLORS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
                (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40)]


def label_color(code):
    return LABEL_COLORS[int(code) % len(LABEL_COLORS)]


def overlay_slice(hu3d, spacing, axis, index, masks=(), labels=None, lo=-250.0, hi=1250.0, highlight=None):
    """A PNG of one plane: windowed CT, a label map tinted (HIGHLIGHT code drawn stronger) and MASKS given as
    (mask3d, (r, g, b), 'fill' | 'outline')."""
    grey = window(display_plane(hu3d, axis, index), lo, hi)
    rgb = to_rgb(grey)
    if labels is not None:
        lab = display_plane(labels, axis, index)
        for code in np.unique(lab):
            if code == 0:
                continue
            alpha = 0.55 if highlight is not None and code == highlight else 0.28
            blend(rgb, lab == code, label_color(code), alpha)
    for mask3d, color, style in masks:
        m = display_plane(mask3d, axis, index)
        if style == "fill":
            blend(rgb, m, color, 0.5)
            contour(rgb, m, color)
        else:
            contour(rgb, m, color)
    row_mm, col_mm = plane_spacing(spacing, axis)
    return png_bytes(resample_square(np.clip(rgb, 0, 255).astype(np.uint8), row_mm, col_mm))


# --- plots ---------------------------------------------------------------------------------------------------------

_FONT = {  # 3x5 bitmap digits, rows top to bottom
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
    "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001010010010",
    "8": "111101111101111", "9": "111101111001111", "-": "000000111000000", ".": "000000000000010",
    " ": "000000000000000",
}


def _text(img, x, y, s, color=(0, 0, 0), scale=2):
    """Draws digits at (x, y) = top-left, in place."""
    for ch in s:
        bits = _FONT.get(ch, _FONT[" "])
        for r in range(5):
            for c in range(3):
                if bits[r * 3 + c] == "1":
                    img[y + r * scale:y + (r + 1) * scale, x + c * scale:x + (c + 1) * scale] = color
        x += 4 * scale


def _nice_ticks(lo, hi, n=5):
    span = hi - lo or 1.0
    step = 10 ** np.floor(np.log10(span / n))
    for m in (1, 2, 5, 10):
        if span / (step * m) <= n:
            step *= m
            break
    start = np.ceil(lo / step) * step
    return [t for t in np.arange(start, hi + step * 0.5, step) if lo - 1e-9 <= t <= hi + 1e-9]


def _fmt(t):
    return str(int(round(t))) if abs(t - round(t)) < 1e-6 else f"{t:.1f}"


class _Canvas:
    def __init__(self, xlim, ylim, w=520, h=340, margin=(56, 16, 16, 36)):
        self.img = np.full((h, w, 3), 255, np.uint8)
        self.xlim, self.ylim = xlim, ylim
        self.l, self.t, self.r, self.b = margin
        self.w, self.h = w, h

    def px(self, x, y):
        (x0, x1), (y0, y1) = self.xlim, self.ylim
        X = self.l + (np.asarray(x, float) - x0) / (x1 - x0) * (self.w - self.l - self.r)
        Y = self.h - self.b - (np.asarray(y, float) - y0) / (y1 - y0) * (self.h - self.t - self.b)
        return X, Y

    def line(self, xs, ys, color, width=1):
        X, Y = self.px(xs, ys)
        for i in range(len(X) - 1):
            n = int(max(abs(X[i + 1] - X[i]), abs(Y[i + 1] - Y[i]))) + 2
            for xx, yy in zip(np.linspace(X[i], X[i + 1], n), np.linspace(Y[i], Y[i + 1], n)):
                self.dot(xx, yy, color, width)

    def dot(self, X, Y, color, r=1):
        xi, yi = int(round(X)), int(round(Y))
        self.img[max(0, yi - r + 1):max(0, yi + r), max(0, xi - r + 1):max(0, xi + r)] = color

    def vline(self, x, color):
        X, _ = self.px(x, self.ylim[0])
        xi = int(round(float(X)))
        if self.l <= xi < self.w - self.r:
            self.img[self.t:self.h - self.b, xi:xi + 2] = color

    def axes(self):
        c = (0, 0, 0)
        self.img[self.t:self.h - self.b + 1, self.l - 1] = c
        self.img[self.h - self.b, self.l - 1:self.w - self.r] = c
        for t in _nice_ticks(*self.xlim):
            X, _ = self.px(t, 0)
            xi = int(round(float(X)))
            self.img[self.h - self.b:self.h - self.b + 5, xi] = c
            s = _fmt(t)
            _text(self.img, xi - len(s) * 4, self.h - self.b + 8, s)
        for t in _nice_ticks(*self.ylim):
            _, Y = self.px(0, t)
            yi = int(round(float(Y)))
            self.img[yi, self.l - 6:self.l - 1] = c
            s = _fmt(t)
            _text(self.img, self.l - 8 - len(s) * 8, yi - 5, s)

    def png(self):
        self.axes()
        return png_bytes(self.img)


def _matplotlib():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        return plt
    except Exception:
        return None


def histogram_png(values, vlines=(), bins=40, xlabel="HU", title=""):
    """A histogram of VALUES with vertical lines at VLINES (value, (r, g, b))."""
    values = np.asarray(values, float)
    lo, hi = np.percentile(values, [0.5, 99.5]) if values.size else (0.0, 1.0)
    lo = min([lo] + [v for v, _ in vlines]) - 10
    hi = max([hi] + [v for v, _ in vlines]) + 10
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    plt = _matplotlib()
    if plt is not None:
        fig, ax = plt.subplots(figsize=(5.2, 3.4), dpi=100)
        ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="#4477aa")
        for v, col in vlines:
            ax.axvline(v, color=np.asarray(col) / 255.0, lw=2)
        return _finish(plt, fig, ax, xlabel, "voxels", title)
    cv = _Canvas((lo, hi), (0, max(1, counts.max()) * 1.05))
    for c, e0, e1 in zip(counts, edges[:-1], edges[1:]):
        X0, Y = cv.px(e0, c)
        X1, Yb = cv.px(e1, 0)
        cv.img[int(Y):int(Yb), int(X0) + 1:max(int(X0) + 2, int(X1))] = (68, 119, 170)
    for v, col in vlines:
        cv.vline(v, col)
    return cv.png()


def _finish(plt, fig, ax, xlabel, ylabel, title):
    """Labels a matplotlib figure and returns it as PNG bytes."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def scatter_fit_png(xs, ys, slope, intercept, extra=None, xlabel="", ylabel="", title=""):
    """Points (xs, ys), the line y = intercept + slope x, and optionally EXTRA = (x, y) marked in red."""
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    allx = list(xs) + ([extra[0]] if extra else [])
    ally = list(ys) + ([extra[1]] if extra else [])
    x0, x1 = min(allx + [0.0]), max(allx) * 1.1 + 1
    y0 = min(ally + [intercept + slope * x0]) - 20
    y1 = max(ally + [intercept + slope * x1]) + 20
    plt = _matplotlib()
    if plt is not None:
        fig, ax = plt.subplots(figsize=(5.2, 3.4), dpi=100)
        ax.plot([x0, x1], [intercept + slope * x0, intercept + slope * x1], color="#888888")
        ax.plot(xs, ys, "o", color="#4477aa")
        if extra:
            ax.plot([extra[0]], [extra[1]], "s", color="#cc3311")
        return _finish(plt, fig, ax, xlabel, ylabel, title)
    cv = _Canvas((x0, x1), (y0, y1))
    cv.line([x0, x1], [intercept + slope * x0, intercept + slope * x1], (136, 136, 136))
    for x, y in zip(xs, ys):
        X, Y = cv.px(x, y)
        cv.dot(X, Y, (68, 119, 170), 5)
    if extra:
        X, Y = cv.px(*extra)
        cv.dot(X, Y, (204, 51, 17), 6)
    return cv.png()

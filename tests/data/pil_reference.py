"""Independent peer of data/preprocess.cpp, written with PIL and numpy.

  pil_reference.py resize IN.png OUT.png WIDTH HEIGHT   PIL Image.resize(LANCZOS)
  pil_reference.py preprocess IN.png OUT.png RES        the published border crop + pad + resize
                                                        (prints the crop box as JSON)
  pil_reference.py sampling IN.jpg                      prints PIL's JPEG chroma sampling (0 = 4:4:4)
"""
import json
import sys

import numpy as np
from PIL import Image, JpegImagePlugin


def crop_box(img, threshold=5.0, quantile=0.05, buffer_fraction=0.025):
    a = np.asarray(img)
    m = a.mean(-1)
    m = (m / m.max()) * 255
    m -= np.quantile(m, quantile)
    cols = np.where(m.mean(0) > threshold)[0]
    rows = np.where(m.mean(1) > threshold)[0]
    buf = int(((a.shape[0] + a.shape[1]) / 2) * buffer_fraction)
    left, right = max(0, cols.min() - buf), min(a.shape[1], cols.max() + buf)
    top, bottom = max(0, rows.min() - buf), min(a.shape[0], rows.max() + buf)
    return int(left), int(top), int(right), int(bottom)


def preprocess(img, res):
    box = crop_box(img)
    img = img.crop(box)
    w, h = img.size
    side = max(w, h)
    square = Image.new("RGB", (side, side))
    square.paste(img, ((side - w) // 2, (side - h) // 2))
    return square.resize((res, res), resample=Image.Resampling.LANCZOS), box


def main():
    mode = sys.argv[1]
    if mode == "resize":
        img = Image.open(sys.argv[2])
        img.load()
        img.resize((int(sys.argv[4]), int(sys.argv[5])), resample=Image.Resampling.LANCZOS).save(sys.argv[3])
    elif mode == "preprocess":
        img = Image.open(sys.argv[2]).convert("RGB")
        out, box = preprocess(img, int(sys.argv[4]))
        out.save(sys.argv[3])
        print(json.dumps({"box": box}))
    elif mode == "sampling":
        print(JpegImagePlugin.get_sampling(Image.open(sys.argv[2])))
    else:
        raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    main()

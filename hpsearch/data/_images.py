"""Image folders (``data: {name: images, path: DIR}``): one sub-folder per class.

The layout Keras' ``image_dataset_from_directory`` reads: ``DIR/cat/1.jpg``,
``DIR/dog/2.png``... Class names are the folder names, sorted; images are PNG, JPEG,
BMP or GIF (a GIF's first frame), decoded by TensorFlow (``tf.io.decode_image``), set to
``color_mode`` (grayscale or rgb: alpha dropped, grey from RGB with ITU-R 601 weights) and
resized bilinearly to ``image_size`` when they differ from it, as ``uint8``.
:func:`read_image` is the one place that does this, so ``hpsearch predict`` prepares new
images exactly as training did.

The folder is decoded into memory (the split, the scaling and export work on arrays).
The decoded training data (float32, 4 bytes a value) may take up to
``data.memory_limit_mb`` (default 2048 MiB); a larger folder is refused before anything
is decoded, in one line naming the size and the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hpsearch.exceptions import ConfigError

if TYPE_CHECKING:
    from hpsearch.config._schema import DataConfig

__all__ = ["IMAGE_SUFFIXES", "ImageFolder", "list_image_folder", "read_image"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


class ImageError(ValueError):
    """An image that cannot be decoded (the message says why)."""


@dataclass(frozen=True)
class ImageFolder:
    """The files of an image folder and their classes (nothing decoded yet).

    Attributes:
        files: every image, class by class, each class's files sorted by name.
        labels: the class index of each file.
        class_names: the sub-folders' names, sorted.
    """

    files: list[Path]
    labels: np.ndarray
    class_names: list[str]


def _error(message: str, value: object) -> ConfigError:
    return ConfigError(message, path="data.path", value=str(value), has_value=True)


def list_image_folder(root: Path, label: str) -> ImageFolder:
    """List an image folder's classes and files, checking its layout.

    Args:
        root: the folder.
        label: the folder as the user wrote it, for messages.

    Raises:
        ConfigError: not a folder, fewer than 2 class folders, or a class folder
            without images.
    """
    if not root.is_dir():
        raise _error(f"not a folder ({root}); an image folder has one sub-folder per class", label)
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        found = ", ".join(p.name for p in classes) or "none"
        raise _error(f"an image folder needs at least 2 class sub-folders (found: {found})", label)
    files: list[Path] = []
    labels: list[int] = []
    for index, folder in enumerate(classes):
        images = sorted(
            p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not images:
            raise _error(
                f"class folder {folder.name!r} holds no images ({', '.join(IMAGE_SUFFIXES)})",
                label,
            )
        files += images
        labels += [index] * len(images)
    return ImageFolder(files, np.asarray(labels, dtype="int64"), [p.name for p in classes])


def channels_of(color_mode: str) -> int:
    """1 for ``grayscale``, 3 for ``rgb``."""
    return 1 if color_mode == "grayscale" else 3


def read_image(path: Path, size: tuple[int, int] | None, channels: int) -> np.ndarray:
    """One image as ``uint8`` of shape ``(height, width, channels)``.

    Args:
        path: a PNG, JPEG, BMP or GIF file.
        size: ``(height, width)`` to resize to (bilinear), or None to keep its size.
        channels: 1 (grayscale) or 3 (rgb).

    Raises:
        ImageError: the file cannot be read or decoded.
    """
    import tensorflow as tf

    try:
        decoded = tf.io.decode_image(path.read_bytes(), expand_animations=False).numpy()
    except (OSError, tf.errors.OpError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ImageError(f"{path}: not a readable image ({first[:200]})") from None
    image = _to_channels(decoded, channels)
    if size is not None and tuple(image.shape[:2]) != tuple(size):
        resized = tf.image.resize(image, size, method="bilinear").numpy()
        image = np.clip(np.round(resized), 0, 255).astype("uint8")
    return image


def _to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    if image.shape[-1] in (2, 4):  # grey or colour with alpha: the alpha is dropped
        image = image[..., :-1]
    if channels == 1 and image.shape[-1] == 3:
        grey = image.astype("float32") @ np.asarray([0.2989, 0.5870, 0.1140], dtype="float32")
        return np.clip(np.round(grey), 0, 255).astype("uint8")[..., None]
    if channels == 3 and image.shape[-1] == 1:
        return np.repeat(image, 3, axis=-1)
    return image.astype("uint8")


def image_size_of(folder: ImageFolder, cfg: DataConfig) -> tuple[int, int]:
    """``data.image_size``, else the first image's size."""
    if cfg.image_size is not None:
        height, width = cfg.image_size
        return int(height), int(width)
    try:
        first = read_image(folder.files[0], None, channels_of(cfg.color_mode))
    except ImageError as exc:
        raise _error(str(exc), cfg.path) from None
    return int(first.shape[0]), int(first.shape[1])


def load_images(cfg: DataConfig, root: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode an image folder into ``(x uint8 (N, H, W, C), y, class names)``.

    Raises:
        ConfigError: a bad layout, an unreadable image, or a folder whose decoded
            size is above ``data.memory_limit_mb``.
    """
    folder = list_image_folder(root, str(cfg.path))
    size = image_size_of(folder, cfg)
    channels = channels_of(cfg.color_mode)
    need = len(folder.files) * size[0] * size[1] * channels * 4  # float32 once scaled
    limit = cfg.memory_limit_mb * 2**20
    if need > limit:
        raise _error(
            f"{len(folder.files)} images of {size[0]}x{size[1]}x{channels} take "
            f"{need / 2**20:.0f} MiB decoded, above data.memory_limit_mb={cfg.memory_limit_mb}; "
            "image folders are loaded into memory: raise the limit or set a smaller "
            "data.image_size",
            cfg.path,
        )
    x = np.empty((len(folder.files), *size, channels), dtype="uint8")
    for i, path in enumerate(folder.files):
        try:
            x[i] = read_image(path, size, channels)
        except ImageError as exc:
            raise _error(str(exc), cfg.path) from None
    return x, folder.labels, folder.class_names

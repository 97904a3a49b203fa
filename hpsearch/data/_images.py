"""Image folders (``data: {name: images, path: DIR}``): one sub-folder per class.

The layout Keras' ``image_dataset_from_directory`` reads: ``DIR/cat/1.jpg``,
``DIR/dog/2.png``... Class names are the folder names, sorted; images are PNG, JPEG,
BMP or GIF (a GIF's first frame), decoded by TensorFlow (``tf.io.decode_image``), set to
``color_mode`` (grayscale or rgb: alpha dropped, grey from RGB with ITU-R 601 weights) and
resized bilinearly to ``image_size`` when they differ from it, as ``uint8``.
:func:`read_image` is the one place that does this, so ``hpsearch predict`` prepares new
images exactly as training did.

A folder whose decoded size (float32, 4 bytes a value) is at most ``data.memory_limit_mb``
(default 2048 MiB) is decoded into memory. A larger one is streamed: each split is an
:class:`ImageFiles`, a list of files that stands where the array would and is decoded,
batch by batch, by a ``tf.data`` pipeline (:meth:`ImageFiles.tf_dataset`) through the
same :func:`read_image`. The split is computed on the file list with the same stratified
splitter and seeds, so a folder gets the same split either way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np

from hpsearch.exceptions import ConfigError

if TYPE_CHECKING:
    from hpsearch.config._schema import DataConfig

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageFiles",
    "ImageFolder",
    "list_image_folder",
    "read_image",
    "stream_images",
    "streams",
]

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


# the default image size's longer side at most: photos (often 3000+ pixels) are tuned on
# thumbnails, as a CPU can train dozens of networks on them; data.image_size asks for more
DEFAULT_MAX_SIDE = 128


def image_size_of(folder: ImageFolder, cfg: DataConfig) -> tuple[int, int]:
    """``data.image_size``, else the first image's size, scaled down (aspect kept) so its
    longer side is at most :data:`DEFAULT_MAX_SIDE`."""
    if cfg.image_size is not None:
        height, width = cfg.image_size
        return int(height), int(width)
    try:
        first = read_image(folder.files[0], None, channels_of(cfg.color_mode))
    except ImageError as exc:
        raise _error(str(exc), cfg.path) from None
    return fit_within(int(first.shape[0]), int(first.shape[1]), DEFAULT_MAX_SIDE)


def fit_within(height: int, width: int, side: int) -> tuple[int, int]:
    """``(height, width)`` scaled down, aspect kept, so neither is above ``side``.

    >>> fit_within(28, 28, 128), fit_within(3024, 4032, 128), fit_within(1000, 10, 128)
    ((28, 28), (96, 128), (128, 1))
    """
    scale = min(1.0, side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def load_images(cfg: DataConfig, root: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode an image folder into ``(x uint8 (N, H, W, C), y, class names)`` (one that
    :func:`stream_images` found small enough).

    Raises:
        ConfigError: a bad layout or an unreadable image.
    """
    folder = list_image_folder(root, str(cfg.path))
    size = image_size_of(folder, cfg)
    channels = channels_of(cfg.color_mode)
    x = np.empty((len(folder.files), *size, channels), dtype="uint8")
    for i, path in enumerate(folder.files):
        try:
            x[i] = read_image(path, size, channels)
        except ImageError as exc:
            raise _error(str(exc), cfg.path) from None
    return x, folder.labels, folder.class_names


# ------------------------------------------------------------------ streaming
@dataclass(frozen=True)
class ImageFiles:
    """A split of an image folder too large for memory: the files, decoded on use.

    It stands where a split's array would: ``len``, ``shape``, ``dtype`` and slicing
    (``x[:256]`` decodes those images) work as on the array, and
    :meth:`tf_dataset` streams it to Keras (training, evaluation, prediction).

    Attributes:
        files: the images, in the split's order.
        size: ``(height, width)`` every image is resized to.
        channels: 1 or 3.
        divide: inputs are divided by this (the scaling), or None for raw ``uint8``.
    """

    files: tuple[Path, ...]
    size: tuple[int, int]
    channels: int
    divide: float | None = None

    def __len__(self) -> int:
        return len(self.files)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.files), *self.size, self.channels)

    @property
    def ndim(self) -> int:
        return 4

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype("uint8" if self.divide is None else "float32")

    def decode(self, i: int) -> np.ndarray:
        """Image ``i`` as training takes it (scaled unless this is the raw view)."""
        image = read_image(self.files[i], self.size, self.channels)
        if self.divide is None:
            return image
        return image.astype("float32") / np.float32(self.divide)

    def __getitem__(self, index: slice) -> np.ndarray:
        picked = range(len(self.files))[index]
        if isinstance(picked, int):
            return self.decode(picked)
        out = np.empty((len(picked), *self.size, self.channels), dtype=self.dtype)
        for row, i in enumerate(picked):
            out[row] = self.decode(i)
        return out

    def raw(self) -> ImageFiles:
        """The same images unscaled (``uint8``), as an exported model takes them."""
        return ImageFiles(self.files, self.size, self.channels, None)

    def join(self, other: ImageFiles) -> ImageFiles:
        """This split followed by ``other`` (train + validation for ``export --full``)."""
        return ImageFiles(self.files + other.files, self.size, self.channels, self.divide)

    def tf_dataset(
        self, y: np.ndarray | None = None, batch_size: int = 256, *, shuffle: bool = False
    ) -> Any:
        """A ``tf.data.Dataset`` of batches (``(x, y)`` with labels, else ``x``), decoded
        in parallel as they are needed; shuffled each epoch with ``shuffle`` (seeded by
        ``keras.utils.set_random_seed``)."""
        import tensorflow as tf

        dtype = tf.uint8 if self.divide is None else tf.float32
        shape = (*self.size, self.channels)

        def image(i: Any) -> Any:
            x = tf.numpy_function(lambda j: self.decode(int(j)), [i], dtype, stateful=False)
            return tf.ensure_shape(x, shape)

        ds = tf.data.Dataset.range(len(self.files))
        if shuffle:
            ds = ds.shuffle(len(self.files), reshuffle_each_iteration=True)
        if y is None:
            ds = ds.map(image, num_parallel_calls=tf.data.AUTOTUNE)
        else:
            labels = tf.constant(np.asarray(y))
            ds = ds.map(
                lambda i: (image(i), tf.gather(labels, i)), num_parallel_calls=tf.data.AUTOTUNE
            )
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def streams(x: Any) -> TypeGuard[ImageFiles]:
    """Whether a split is streamed from its files (an :class:`ImageFiles`)."""
    return isinstance(x, ImageFiles)


def stream_images(cfg: DataConfig, root: Path) -> tuple[ImageFolder, tuple[int, int], int] | None:
    """The folder, size and channels when its decoded size is above
    ``data.memory_limit_mb`` (it is then streamed), else None (it is decoded)."""
    folder = list_image_folder(root, str(cfg.path))
    size = image_size_of(folder, cfg)
    channels = channels_of(cfg.color_mode)
    need = len(folder.files) * size[0] * size[1] * channels * 4  # float32 once scaled
    if need <= cfg.memory_limit_mb * 2**20:
        return None
    if cfg.scale == "standard":
        raise ConfigError(
            f"{len(folder.files)} images of {size[0]}x{size[1]}x{channels} take "
            f"{need / 2**20:.0f} MiB decoded, above data.memory_limit_mb={cfg.memory_limit_mb}, "
            "so they are streamed from disk, which takes scale auto, unit or none",
            path="data.scale",
            value=cfg.scale,
            has_value=True,
        )
    return folder, size, channels


def fingerprint_files(folder: ImageFolder, root: Path, indices: Sequence[np.ndarray]) -> str:
    """A hash of a streamed folder: its files' names and sizes, labels and split."""
    digest = hashlib.sha256()
    for path, label in zip(folder.files, folder.labels.tolist(), strict=True):
        digest.update(f"{path.relative_to(root)}\0{path.stat().st_size}\0{label}\n".encode())
    for part in indices:
        digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()[:16]

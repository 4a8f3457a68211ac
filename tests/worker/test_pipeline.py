import numpy as np
import pytest
from PIL import Image

from tlbench import data


@pytest.fixture(scope="module")
def tf():
    import tensorflow

    return tensorflow


def test_digits_become_rgb_floats_at_the_backbone_size(tf):
    from tlbench.worker.pipeline import SplitPipeline

    digits = data.open_dataset("digits")
    pipeline = SplitPipeline(digits, np.arange(10), image_size=128)
    images, labels = next(iter(pipeline.batches(4)))
    assert images.shape == (4, 128, 128, 3) and images.dtype == tf.float32
    assert float(tf.reduce_min(images)) >= 0.0 and float(tf.reduce_max(images)) <= 1.0
    assert np.array_equal(images[..., 0], images[..., 2])  # grey copied to RGB
    assert labels.numpy().tolist() == digits.labels[:4].tolist()


def test_a_timed_stream_gives_full_batches_forever_from_a_few_cached_ones(tf):
    from tlbench.worker.pipeline import SplitPipeline

    pipeline = SplitPipeline(data.open_dataset("digits"), np.arange(5), image_size=32)
    stream = iter(pipeline.timed_stream(4, seed=0, distinct_batches=3))
    labels = [tuple(next(stream)[1].numpy()) for _ in range(9)]
    assert all(len(batch) == 4 for batch in labels)  # 5 images still fill batches of 4
    assert labels[:3] == labels[3:6] == labels[6:]  # three distinct batches, cycled
    assert [x.shape[0] for x, _ in pipeline.batches(4)] == [4, 1]


def test_image_files_of_any_mode_become_rgb_in_unit_range(tf, tmp_path):
    from tlbench.worker.pipeline import SplitPipeline

    files = {
        "grey.png": Image.new("L", (20, 30), 255),
        "rgba.png": Image.new("RGBA", (40, 10), (255, 0, 0, 10)),
        "palette.gif": Image.new("P", (8, 8), 3),
        "photo.JPG": Image.new("RGB", (300, 200), (0, 128, 255)),
        "deep16.png": Image.fromarray(np.full((16, 16), 65535, dtype=np.uint16)),
        "tiny.png": Image.new("RGB", (1, 1), (0, 0, 0)),
        "huge.png": Image.new("RGB", (6000, 4000), (255, 255, 255)),  # 24 megapixels
    }
    for i, (name, image) in enumerate(files.items()):
        (tmp_path / f"c{i % 2}").mkdir(exist_ok=True)
        image.save(tmp_path / f"c{i % 2}" / name)
    (tmp_path / "c0" / "extra.png").write_bytes((tmp_path / "c0" / "grey.png").read_bytes())
    (tmp_path / "c1" / "extra.png").write_bytes((tmp_path / "c0" / "grey.png").read_bytes())
    images = data.open_dataset(str(tmp_path))
    pipeline = SplitPipeline(images, np.arange(len(images.labels)), image_size=24)
    batch, _ = next(iter(pipeline.batches(len(images.labels))))
    assert batch.shape == (len(images.labels), 24, 24, 3)
    assert float(tf.reduce_min(batch)) >= 0.0 and float(tf.reduce_max(batch)) <= 1.0
    by_name = {p.rsplit("/", 1)[-1]: i for i, p in enumerate(images.paths)}
    assert np.allclose(batch[by_name["grey.png"]], 1.0)
    assert np.allclose(batch[by_name["deep16.png"]], 1.0)  # 16-bit white is white, not 1/257
    assert np.allclose(batch[by_name["rgba.png"]][..., 0], 1.0)
    assert np.allclose(batch[by_name["tiny.png"]], 0.0) and np.allclose(batch[by_name["huge.png"]], 1.0)


def test_with_host_memory_the_images_stay_out_of_the_allocator_and_each_batch_is_copied_in(tf):
    """--device-memory on a CPU: the allocator is the device, so the decoded
    split and the timed batches are held in numpy, as a GPU trial holds them
    in host memory; the cached pipeline holds them in the allocator."""
    from tlbench.worker.pipeline import SplitPipeline

    digits = data.open_dataset("digits")
    in_use = lambda: tf.config.experimental.get_memory_info("CPU:0")["current"]
    split_bytes = 64 * 128 * 128 * 3 * 4

    cached = SplitPipeline(digits, np.arange(64), image_size=128)
    before = in_use()
    expected = np.concatenate([np.array(x, copy=True) for x, _ in cached.batches(16)])
    assert in_use() - before >= split_bytes  # the cache, in the allocator

    host = SplitPipeline(digits, np.arange(64), image_size=128, host_memory=True)
    before = in_use()
    batches = [(np.array(x, copy=True), np.array(y, copy=True)) for x, y in host.batches(16)]
    assert in_use() - before < split_bytes / 4  # at most a batch or so, never the split
    assert np.array_equal(np.concatenate([x for x, _ in batches]), expected)  # the same images, the same order
    assert np.concatenate([y for _, y in batches]).tolist() == digits.labels[:64].tolist()

    shuffled = np.concatenate([y.numpy() for _, y in host.batches(16, shuffle_seed=3)]).tolist()
    assert sorted(shuffled) == sorted(digits.labels[:64].tolist()) != shuffled
    stream = host.timed_batches(16, seed=0, count=3)
    labels = [tuple(next(stream)[1].numpy()) for _ in range(9)]
    assert labels[:3] == labels[3:6] == labels[6:] and len(set(labels[:3])) == 3  # three full batches, cycled
    assert host.passes == 3 and in_use() - before < split_bytes / 4


def test_no_pass_over_a_split_is_autotuned(tf):
    """tf.data's tuning thread can hold the end of a pass until its next
    wake-up (pipeline.untuned; measured in bench/test_pass_end.py): every
    pass tlbench iterates runs without it."""
    from tlbench.worker.pipeline import SplitPipeline
    from tlbench.worker.training import FeatureSplit

    pipeline = SplitPipeline(data.open_dataset("digits"), np.arange(10), image_size=32)
    passes = {
        "batches": pipeline.batches(4),
        "shuffled batches": pipeline.batches(4, shuffle_seed=1),
        "timed stream": pipeline.timed_stream(4),
        "features": FeatureSplit(lambda x: tf.reshape(x, (len(x), -1)), pipeline, 4).batches(4),
    }
    assert {name: ds.options().autotune.enabled for name, ds in passes.items()} == dict.fromkeys(passes, False)

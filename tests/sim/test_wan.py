"""wan.py: the clip geometry of the Wan2.x pipelines, and the 0.30.0 source lines its numbers come from."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from vomni_nb.sim.wan import DEFAULT_FRAMES, DEFAULT_SIZE, Geometry, frame_count, geometry, image_to_video_size

TI2V = "Wan-AI/Wan2.2-TI2V-5B-Diffusers"
T2V = "Wan-AI/Wan2.2-T2V-A14B-Diffusers"


@pytest.mark.parametrize(("asked", "made"), [(1, 1), (2, 1), (3, 1), (4, 5), (5, 5), (8, 9), (16, 17), (81, 81),
                                             (96, 97), (120, 121)])
def test_frame_counts_become_4k_plus_1(asked: int, made: int) -> None:
    assert frame_count(asked) == made


def test_sizes_are_floored_to_the_models_multiple() -> None:
    assert geometry(TI2V, 65, 48, 8) == Geometry(64, 32, 9)
    assert geometry(T2V, 65, 48, 8) == Geometry(64, 48, 9)
    assert geometry(TI2V, 1280, 720, None) == Geometry(1280, 704, 81)


def test_nothing_set_is_832x480_and_81_frames() -> None:
    assert (DEFAULT_SIZE, DEFAULT_FRAMES) == ((832, 480), 81)
    assert geometry(TI2V, None, None, None) == geometry(T2V, None, None, None) == Geometry(832, 480, 81)


def test_image_to_video_keeps_the_pictures_shape_at_the_720p_area() -> None:
    assert image_to_video_size(1920, 1080) == (1280, 720)
    assert image_to_video_size(1080, 1920) == (720, 1280)
    assert image_to_video_size(1024, 1024) == (960, 960)
    assert geometry(T2V, None, None, None, image_size=(1920, 1080)) == Geometry(1280, 720, 81)
    assert geometry(TI2V, None, None, None, image_size=(1920, 1080)) == Geometry(1280, 704, 81)
    assert geometry(T2V, 640, None, 17, image_size=(1920, 1080)) == Geometry(640, 720, 17)  # only the unset side


def _wan_source(name: str) -> str:
    # tests/support/vllm_omni_models may have put a package stub (no __spec__) in sys.modules already.
    loaded = sys.modules.get("vllm_omni")
    if loaded is not None and getattr(loaded, "__path__", None):
        root = Path(list(loaded.__path__)[0])
    else:
        spec = importlib.util.find_spec("vllm_omni")
        if spec is None or not spec.submodule_search_locations:
            pytest.skip("vllm-omni==0.30.0 (--no-deps) is not installed")
        root = Path(list(spec.submodule_search_locations)[0])
    return (root / "diffusion/models/wan2_2" / name).read_text()


@pytest.mark.parametrize("pipeline", ["pipeline_wan2_2.py", "pipeline_wan2_2_i2v.py"])
def test_the_numbers_are_the_ones_in_the_0_30_0_pipelines(pipeline: str) -> None:
    source = _wan_source(pipeline)
    assert "num_frames // self.vae_scale_factor_temporal * self.vae_scale_factor_temporal + 1" in source
    assert "height = common.height or 480" in source and "width = common.width or 832" in source
    assert "num_frames = common.num_frames or 81" in source


def test_the_image_to_video_area_is_the_one_in_the_0_30_0_pre_process() -> None:
    source = _wan_source("pipeline_wan2_2.py")
    assert "max_area = 720 * 1280" in source and "mod_value = 16  # Must be divisible by 16" in source
    assert "mod_value = self.vae_scale_factor_spatial * patch_size[1]  # 16*2=32 for TI2V, 8*2=16 for I2V" in source

"""The reward-model registry and the shipped default checkpoint."""

from __future__ import annotations

import pytest

from rewards import list_reward_models, make_reward_model
from sarm2_env.errors import CheckpointError, UnknownNameError


def test_unknown_name_lists_known_ones_and_suggests() -> None:
    with pytest.raises(UnknownNameError) as err:
        make_reward_model("sarm22")
    message = str(err.value)
    assert "sarm2" in message and "Did you mean 'sarm2'" in message


def test_registered_backends_build_from_a_checkpoint(tiny_sarm2_checkpoint) -> None:
    assert "sarm2" in list_reward_models()
    model = make_reward_model("sarm2", checkpoint=tiny_sarm2_checkpoint, device="cpu")
    assert model.name == "sarm2" and model.trainable and model.net is not None


def test_missing_checkpoint_path_says_what_to_pass(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="--data <dataset dir>"):
        make_reward_model("sarm2", checkpoint=tmp_path / "nowhere")


def test_default_checkpoint_is_small_and_covers_every_task() -> None:
    from rewards.sarm2.model import DEFAULT_CHECKPOINT
    from tasks import TASKS

    size = (DEFAULT_CHECKPOINT / "model.safetensors").stat().st_size
    assert size < 12 * 2**20  # ships in the repo: ~10 MB of fp16 weights (2 x 2 grid features: 4x the input width)
    model = make_reward_model("sarm2", checkpoint="default", device="cpu")
    assert all(model.covers(task) for task in TASKS)
    assert model.training_summary["held_out_mse_fp16"] < 0.05


@pytest.mark.slow
def test_default_checkpoint_scores_fresh_demos_as_the_readme_says(tmp_path) -> None:
    """The documented held-out figure (docs/measured.md) is the checkpoint's own, and holds on unseen demos."""
    import re
    from pathlib import Path

    import numpy as np

    from rewards.pretrained import DEMO_SEED, held_out_mse
    from sarm2_env.dataset import EpisodeDataset
    from tasks.collect import CollectConfig, collect

    measured = (Path(__file__).resolve().parents[2] / "docs" / "measured.md").read_text()
    line = next(x for x in measured.splitlines() if "held-out demo value MSE vs time-linear" in x)
    figure = float(re.search(r"([0-9.]+e-[0-9]+) \(fp16 file\)", line).group(1))
    model = make_reward_model("sarm2", checkpoint="default", device="cpu")
    assert figure == pytest.approx(model.training_summary["held_out_mse_fp16"], rel=1e-3)
    # Full-skill demos far past the 15 training seeds per task (one short and one long task).
    tasks = ("SARM2/PullPlug-v0", "SARM2/CleanWhiteboard-v0")
    collect(CollectConfig(tasks=tasks, episodes=1, seed=DEMO_SEED + 500), tmp_path, progress_bar=False)
    ds = EpisodeDataset(tmp_path)
    mse = held_out_mse(model, [ds.load(i) for i in range(len(ds))])
    assert np.isfinite(mse) and mse <= 3 * figure, f"fresh-demo MSE {mse:.3e} vs the documented {figure:.3e}"


# ---------------------------------------------------------------------- the one contract and the one rule
def test_every_backend_declares_its_role_and_the_trainable_ones_their_contract() -> None:
    from rewards.base import ROLES, TrainableRewardModel
    from rewards.registry import reward_model_class, reward_models_with_role

    for name in list_reward_models():
        cls = reward_model_class(name)
        assert cls.role in ROLES and cls.name == name
        assert cls.trainable == issubclass(cls, TrainableRewardModel)
        if cls.adaptable:
            assert cls.trainable and cls.adapt is not TrainableRewardModel.adapt
    assert reward_models_with_role("model") == ["sarm2"]
    assert set(reward_models_with_role("published_baseline")) == {
        "sarm", "rewind", "robometer_lite", "gvl", "topreward", "roboreward_prompt"
    }  # fmt: skip
    assert set(reward_models_with_role("reference", "upper_bound")) == {
        "oracle", "sparse", "time_linear", "sarm2_oracle_stage"
    }  # fmt: skip
    with pytest.raises(UnknownNameError, match="role"):
        reward_models_with_role("baseline")


def test_the_contract_is_checked_when_a_backend_is_defined() -> None:
    from rewards.base import RewardModel
    from rewards.references import TimeLinearRewardModel

    with pytest.raises(TypeError, match="role"):
        type("BadRole", (TimeLinearRewardModel,), {"role": "baseline"})
    with pytest.raises(TypeError, match="config_cls"):
        type("NoConfig", (TimeLinearRewardModel,), {"config_cls": None})
    with pytest.raises(TypeError, match="adapt"):
        type("ClaimsAdapt", (TimeLinearRewardModel,), {"adaptable": True})
    with pytest.raises(TypeError, match="TrainableRewardModel"):
        type("Trains", (RewardModel,), {"trainable": True})


def test_make_reward_model_owns_the_default_checkpoint_rule(tmp_path) -> None:
    shipped = make_reward_model("sarm2", device="cpu")  # no checkpoint given: the shipped one
    assert shipped.checkpoint_path is not None and shipped.net is not None
    untrained = make_reward_model("sarm2", checkpoint=None, device="cpu", encoder="tiny", text_encoder="tiny-hash")
    assert untrained.net is None
    with pytest.raises(CheckpointError, match="ships no checkpoint; pass checkpoint=<directory>"):
        make_reward_model("rewind")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        make_reward_model("oracle", checkpoint=tmp_path)
    assert make_reward_model("oracle", device="cpu").name == "oracle"  # device is for trainable backends only


def test_command_lines_share_the_rule_and_name_their_flag() -> None:
    from rewards.registry import reward_model_from_command_line
    from sarm2_env.errors import ConfigError

    assert reward_model_from_command_line("oracle", None).name == "oracle"
    with pytest.raises(ConfigError, match=r"ships no checkpoint.*on the command line: --checkpoint rewind=PATH"):
        reward_model_from_command_line("rewind", None, flag="--checkpoint rewind=")
    with pytest.raises(ConfigError, match="vision-language model"):
        reward_model_from_command_line("gvl", None)

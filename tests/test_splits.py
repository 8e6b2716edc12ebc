"""Training, validation and held-out maps: disjoint by value for every family and seed; choices are made on
validation maps, results reported on held-out ones."""

import numpy as np
import pytest

from trl_icrl import DQNConfig, DQNTrainer
from trl_icrl.envs import (
    ENV_ID,
    RESERVED_HELDOUT_MAPS,
    RESERVED_VALIDATION_MAPS,
    TRAIN_SEED_LIMIT,
    evaluation_maps,
    heldout_maps,
    split_maps,
    validation_maps,
)
from trl_icrl.envs.families import _MAP_FAMILIES


@pytest.mark.parametrize("env_id", sorted(_MAP_FAMILIES))
@pytest.mark.parametrize("seed", [0, 3])
def test_training_validation_and_heldout_maps_are_disjoint_by_value(env_id, seed):
    excluded = evaluation_maps(env_id, seed)
    for family in _MAP_FAMILIES[env_id].values():
        validation = validation_maps(family, RESERVED_VALIDATION_MAPS, seed)
        held_out = heldout_maps(family, RESERVED_HELDOUT_MAPS, seed)
        assert len(set(validation)) == RESERVED_VALIDATION_MAPS and not set(validation) & set(held_out)
        assert set(validation) <= excluded and set(held_out) <= excluded
        seeds = np.random.default_rng(seed).integers(TRAIN_SEED_LIMIT, size=300)
        training = {family.generate(int(s), exclude=excluded) for s in seeds}
        assert not training & (set(validation) | set(held_out))
        assert validation_maps(family, 5, seed) == validation[:5]  # a prefix: fewer maps are the first of more


def test_a_validation_count_beyond_the_split_is_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="validation split holds 200 maps"):
        validation_maps("id", RESERVED_VALIDATION_MAPS + 1)
    with pytest.raises(ValueError, match="eval_maps must be at most 200"):
        DQNConfig(output_dir=str(tmp_path), eval_maps=RESERVED_VALIDATION_MAPS + 1)
    with pytest.raises(ValueError, match="eval_split must be one of"):
        DQNConfig(output_dir=str(tmp_path), eval_split="test")
    with pytest.raises(ValueError, match="split must be one of"):
        split_maps("train", "id", 3)


def test_the_in_run_evaluation_plays_validation_maps_and_the_report_held_out_ones(tiny_dir, tmp_path):
    args = DQNConfig(output_dir=str(tmp_path), eval_maps=2, eval_episodes=2, trials_per_rollout=2,
                     episodes_per_trial=2, learning_starts=2, max_context_tokens=128, disable_tqdm=True,
                     report_to="none", seed=1, max_steps=2, max_train_minutes=None, eval_every_minutes=0.0)
    trainer = DQNTrainer(str(tiny_dir), args)
    assert trainer.eval_maps_by_env["validation"] == {ENV_ID: validation_maps("id", 2, seed=1)}
    assert trainer.eval_maps_by_env["heldout"] == {ENV_ID: heldout_maps("id", 2, seed=1)}
    assert trainer.eval_dataset == trainer.eval_maps_by_env["validation"]  # what evaluate() plays
    trainer.train()
    in_run = [log for log in trainer.state.log_history if "train_minutes" in log]
    assert len(in_run) == 2 and all("validation_final10" in log and "heldout_final10" not in log for log in in_run)


def test_conditions_play_the_maps_of_the_split_asked():
    from trl_icrl.agent.exploration import ExplorationSchedule
    from trl_icrl.evaluation import make_condition

    ramp = ExplorationSchedule.parse("paper_ramp")
    assert make_condition("in_distribution", 3, 2, ramp, 0, "validation").maps == validation_maps("id", 3)
    assert make_condition("out_of_distribution", 3, 2, ramp, 0).maps == heldout_maps("ood", 3)
    assert make_condition("non_stationary", 2, 2, ramp, 0, "validation").info["maps_b"] == [
        "/".join(m) for m in validation_maps("id", 4)[2:]]
    with pytest.raises(ValueError, match="stitching condition draws its family from held-out maps"):
        make_condition("stitching", 3, 2, ramp, 0, "validation")

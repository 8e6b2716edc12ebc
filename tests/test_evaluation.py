"""Tests for trl_icrl.evaluation: the paper's evaluation suite and its report."""

import ast
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from monte_carlo import random_walk_success  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from trl_icrl.agent import ICRLAgent  # noqa: E402
from trl_icrl.agent.config import AgentConfig  # noqa: E402
from trl_icrl.agent.exploration import ExplorationSchedule  # noqa: E402
from trl_icrl.agent.play import RolloutResult  # noqa: E402
from trl_icrl.agent.q_network import build_q_network, make_peft_config  # noqa: E402
from trl_icrl.envs import (  # noqa: E402
    ENV_ID,
    PAPER_STITCHING_DEMOS,
    STITCHING_MAP,
    TRAIN_SEED_LIMIT,
    ParametricFrozenLake,
    heldout_map_seeds,
    heldout_maps,
    stitching_family,
)
from trl_icrl.envs.codec import frozen_lake_codec  # noqa: E402
from trl_icrl.evaluation import (  # noqa: E402
    CONDITIONS,
    demonstration_episode,
    evaluate_condition,
    evaluate_data_quality,
    write_report,
)
from trl_icrl.protocol import TokenProtocol  # noqa: E402
from trl_icrl.tiny_model import build_tiny_model, build_tokenizer  # noqa: E402
from trl_icrl.trainer.collector import TrialCollector  # noqa: E402


@pytest.mark.parametrize("condition", CONDITIONS)
def test_oracle_succeeds_every_episode_with_zero_regret(condition):
    result = evaluate_condition(None, condition, n_maps=4, n_episodes=3, baselines=("oracle",), progress=False)
    oracle = result["agents"]["oracle"]
    assert oracle["success_per_episode"] == [1.0] * result["n_episodes"]
    assert oracle["regret"] == 0.0 and oracle["episodes_to_first_success"] == 0.0
    if condition == "non_stationary":
        assert result["n_episodes"] == 6 and oracle["map_b_final10_success"] == 1.0
        assert result["schedule"] == [0.0, 0.0, 0.1] * 2  # the ramp restarts on map B
    if condition == "stitching":  # the paper map 5/5, and the whole generated family
        assert oracle["paper_map_successes"] == 5 and oracle["family_success_rate"] == 1.0


def test_random_baseline_matches_monte_carlo():
    """Mean success of the random baseline on 4 held-out ID maps against gymnasium's own FrozenLake-v1 playing
    uniform actions from its uniformly drawn start (100-step limit). Tolerance: 4 standard errors of the
    difference (the estimates are independent)."""
    n_maps, n_episodes, n_mc = 4, 100, 1000
    result = evaluate_condition(None, "in_distribution", n_maps=n_maps, n_episodes=n_episodes,
                                baselines=("random",), progress=False)
    rng, rates = np.random.default_rng(7), []
    for desc in result["maps"]:
        rates.append(random_walk_success(desc.split("/"), n_mc, rng, max_episode_steps=100))
    rates = np.asarray(rates)
    p_mc = rates.mean()
    assert 0.05 < p_mc < 0.95  # the comparison has power
    variance = (rates * (1 - rates)).sum() / n_maps**2
    std = np.sqrt(variance / n_episodes + variance / n_mc)
    assert abs(result["agents"]["random"]["mean_success"] - p_mc) <= 4 * std


class _StubEngine:
    """Records the maps and seeds a TrialCollector hands to ``play`` instead of playing them."""

    def __init__(self):
        self.maps, self.seeds = [], []

    def play(self, envs, n_episodes, schedule, rng, reset_seeds, reset_options):
        self.seeds += list(reset_seeds)
        self.maps += [reset_options(i, 0)["desc"] for i in range(len(envs))]
        return RolloutResult([], np.zeros((len(envs), 0)), np.zeros((len(envs), 0)), np.zeros((len(envs), 0)), 0)


@pytest.mark.parametrize("seed", [0, 1])
def test_heldout_maps_never_overlap_training(seed):
    heldout = heldout_maps("id", 50, seed)
    heldout_seeds = heldout_map_seeds(50, seed)
    assert min(heldout_seeds) >= TRAIN_SEED_LIMIT and max(heldout_seeds) < 2 * TRAIN_SEED_LIMIT
    for rank in (0, 1):
        engine = _StubEngine()
        collector = TrialCollector(engine, ENV_ID, "id", n_parallel=8, episodes_per_trial=1,
                                   schedules=[ExplorationSchedule.parse("greedy")], exclude_maps=heldout, seed=seed,
                                   rank=rank)
        for _ in range(4):
            collector.collect()
        assert engine.seeds == np.random.default_rng([seed, rank]).integers(TRAIN_SEED_LIMIT, size=32).tolist()
        assert max(engine.seeds) < TRAIN_SEED_LIMIT and not set(engine.seeds) & set(heldout_seeds)
        assert not set(engine.maps) & set(heldout)


@pytest.mark.parametrize("observation_format", ["coords", "index"])
def test_stitching_prefixes_round_trip(observation_format):
    """Demonstrations render and parse back whole in the step format, which writes where each one ended."""
    codec = frozen_lake_codec(observation_format)
    protocol = TokenProtocol(build_tokenizer(), "step", codec.action_words, codec.observation_texts(),
                             codec.reward_values)
    reach, die = (demonstration_episode(d, STITCHING_MAP, codec) for d in PAPER_STITCHING_DEMOS)
    if observation_format == "coords":
        assert reach.observations == ["r0 c2", "r1 c2", "r2 c2", "r3 c2", "r4 c2"]
        assert die.observations == ["r2 c0", "r2 c1", "r2 c2"]
    else:
        assert reach.observations == ["2", "6", "10", "14", "18"] and die.observations == ["8", "9", "10"]
    assert reach.rewards == [0.0] * 4 + [1.0] and die.rewards == [0.0] * 3 and reach.terminated and die.terminated
    assert reach.final_observation == ("r5 c2" if observation_format == "coords" else "22")  # the goal tile
    family = stitching_family(5)
    episodes = [reach, die] + [demonstration_episode(d, m, codec) for m, demos in family for d in demos]
    assert protocol.parse(protocol.render(episodes).input_ids) == episodes


def test_stitching_family_construction():
    for desc, (reach, die) in stitching_family(20, seed=3):
        letters = "".join(desc)
        start = letters.index("S")
        assert letters.count("S") == 1 and die.start == start and reach.start != start
        assert letters[reach.tiles(desc)[-1]] == "G" and letters[die.tiles(desc)[-1]] == "H"
        # The start's shortest path: the dying prefix up to the junction, then the reaching suffix from it.
        junction = die.tiles(desc)[-2]
        suffix = reach.tiles(desc)[reach.tiles(desc).index(junction):]
        stitched = die.tiles(desc)[:-1] + suffix[1:]
        assert len(stitched) - 1 == ParametricFrozenLake(desc=desc).shortest_path_length(start)
        assert start not in reach.tiles(desc)


@pytest.fixture(scope="module")
def tiny_agent(tmp_path_factory) -> ICRLAgent:
    path = build_tiny_model(tmp_path_factory.mktemp("tiny"))
    tokenizer = AutoTokenizer.from_pretrained(path)
    codec = frozen_lake_codec()
    config = AgentConfig(base_model=str(path), q_parameterisation="value_head", adapter_type="lora", env_id=ENV_ID,
                         protocol_format="compact", observation_format=codec.observation_format,
                         action_words=codec.action_words, reward_values=codec.reward_values,
                         n_actions=codec.n_actions, n_observations=codec.n_observations, episodes_per_trial=2,
                         eval_context_tokens=2048, gamma=0.9, reward_scale=1.0)
    protocol = config.token_protocol(tokenizer)
    network = build_q_network(AutoModelForCausalLM.from_pretrained(path), 4, protocol.action_token_ids,
                               "value_head", make_peft_config("lora", "value_head"), with_target=False)
    return ICRLAgent(network, tokenizer, protocol, codec, config)


def test_write_report(tiny_agent, tmp_path):
    conditions = {c: evaluate_condition(tiny_agent, c, n_maps=2, n_episodes=2, baselines=("random", "oracle"),
                                        include_wiped=c == "in_distribution", progress=False)
                  for c in ("in_distribution", "stitching")}
    conditions["data_quality"] = evaluate_data_quality({"low": tiny_agent}, n_maps=2, n_episodes=2,
                                                       baselines=(), progress=False)
    write_report({"model": "tiny", "conditions": conditions}, tmp_path)

    results = json.loads((tmp_path / "results.json").read_text())
    agents = results["conditions"]["in_distribution"]["agents"]
    assert list(agents) == ["icrl", "untrained", "icrl_wiped", "random", "oracle"]
    assert {"success_per_episode", "success_ci95", "final10_success", "episodes_to_first_success",
            "regret"} <= set(agents["icrl"])
    oracle = agents["oracle"]
    assert oracle["final10_per_map"] == [1.0, 1.0] and len(agents["random"]["final10_per_map"]) == 2
    stitching = results["conditions"]["stitching"]
    assert list(stitching["agents"]) == ["icrl", "untrained", "random", "oracle"]
    assert 0 <= stitching["agents"]["icrl"]["paper_map_successes"] <= 5
    assert list(stitching["trajectory"]["paths"]) == ["episode 0", "episode 4"]
    assert stitching["trajectory"]["paths"]["episode 0"][0] == 8  # the forced start
    assert list(results["conditions"]["data_quality"]["agents"]) == ["low"]
    for name in ("in_distribution", "stitching", "data_quality"):
        assert (tmp_path / f"{name}.png").stat().st_size > 0
    for name in ("in_distribution", "stitching"):
        assert (tmp_path / f"{name}_trajectories.png").stat().st_size > 0
    summary = (tmp_path / "summary.md").read_text()
    assert "| icrl_wiped |" in summary and "paper map /5" in summary


def test_replay_gif_shows_every_step_of_the_played_episodes(tmp_path):
    """The committed model on one held-out map: the replay ends each episode as the play did, one frame a step."""
    pytest.importorskip("pygame")
    from PIL import Image

    from trl_icrl.evaluation.replay import replay_frames, write_replay_gif

    agent = ICRLAgent.from_pretrained(Path(__file__).parent.parent / "results" / "tiny_full_finetune_online")
    desc = heldout_maps("id", 1, seed=0)[0]
    result = agent.play(ParametricFrozenLake(desc=desc), n_episodes=3, schedule="paper_ramp", seed=0)
    lengths, successes = result.lengths[0].astype(int).tolist(), result.successes[0].tolist()
    frames = replay_frames(desc, result.trials[0].actions, lengths, successes, reset_seed=0)
    assert len(frames) == sum(lengths) + 3 and frames[lengths[0] + 1][1] == 1  # a start frame per episode
    assert frames[0][0].ndim == 3 and frames[0][0].dtype == np.uint8
    gif = write_replay_gif(frames, tmp_path / "replay.gif", n_episodes=3)
    with Image.open(gif) as image:  # identical consecutive frames merge into one of their summed duration
        durations = [image.seek(i) or image.info["duration"] for i in range(image.n_frames)]
    assert sum(durations) == len(frames) * 1000 // 4 and image.n_frames > 3
    with pytest.raises(ValueError, match="dropped episodes"):
        replay_frames(desc, result.trials[0].actions[:-1], lengths, successes, reset_seed=0)


def test_training_curve_draws_one_panel_per_kind_of_log(tmp_path):
    from matplotlib.image import imread

    from trl_icrl.plotting import plot_training_curve

    loss = [{"step": s, "td_loss": 0.1 / s} for s in (24, 48, 72)]
    held_out = [{"train_minutes": 5.0, "heldout_final10": 0.6, "step": 72}]
    rollout = [{"step": s, "success_rate": 0.2, "success_episodes_0_9": 0.1, "success_episodes_20_29": 0.3}
               for s in (24, 48)]
    widths = {}
    for name, log in (("offline", loss + held_out), ("online", rollout + loss + held_out), ("loss", loss)):
        plot_training_curve(log, tmp_path / f"{name}.png")
        widths[name] = imread(tmp_path / f"{name}.png").shape[1]
    assert widths["online"] == 3 * widths["loss"] and widths["offline"] == 2 * widths["loss"]
    with pytest.raises(ValueError, match="nothing|no rollout"):
        plot_training_curve([{"step": 1, "learning_rate": 1e-3}], tmp_path / "empty.png")


def test_evaluation_and_curve_recipes_run_on_the_committed_adapter(tmp_path):
    """``evaluate_icrl.py`` on the committed adapter results model (4 held-out maps, 30 episodes) writes a report
    whose trained agent beats its untrained self, and ``plot_learning_curves.py`` draws two committed runs."""
    root = Path(__file__).parent.parent
    model = root / "results" / "tiny_adapter_offline"
    subprocess.run([sys.executable, str(root / "recipes" / "evaluate_icrl.py"), "--model", str(model),
                    "--conditions", "in_distribution", "--n_maps", "4", "--n_episodes", "30", "--baselines",
                    "random", "--no_wiped", "--output_dir", str(tmp_path / "eval")], check=True, timeout=300,
                   capture_output=True)
    agents = json.loads((tmp_path / "eval" / "results.json").read_text())["conditions"]["in_distribution"]["agents"]
    assert set(agents) == {"icrl", "untrained", "random"}
    assert agents["icrl"]["final10_success"] > agents["untrained"]["final10_success"] + 0.3
    assert (tmp_path / "eval" / "in_distribution.png").stat().st_size > 10_000
    done = subprocess.run([sys.executable, str(root / "experiments" / "plot_learning_curves.py"), "--output",
                           str(tmp_path / "curves.png"), f"adapter={model / 'short_eval.json'}",
                           f"main_job={root / 'experiments' / 'runs' / 'main_job' / 'short_eval.json'}"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_learning_curves_per_env_end_at_each_envs_final_evaluation(tmp_path):
    """``plot_learning_curves.py --per_env``: a panel per env of the general runs, each curve from the untrained
    model's to the trained model's final-10 on that env; a run on one env alone is refused in one sentence."""
    root = Path(__file__).parent.parent
    runs = {"tiny_general": root / "experiments" / "runs" / "tiny_general" / "short_eval.json",
            "tiny_general_goal": root / "results" / "tiny_general_goal" / "short_eval.json"}
    script = [sys.executable, str(root / "experiments" / "plot_learning_curves.py"), "--per_env", "--x", "updates"]
    done = subprocess.run(script + ["--output", str(tmp_path / "per_env.png")]
                          + [f"{name}={path}" for name, path in runs.items()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "per_env.png").stat().st_size > 20_000
    printed = (line.split(" ", 2) for line in done.stdout.splitlines())
    curves = {(env_id, name): ast.literal_eval(points) for env_id, name, points in printed}
    for name, path in runs.items():
        report = json.loads(path.read_text())
        by_env = report["trained"]["final10_by_env"]
        assert len(by_env) == 3
        for env_id, final10 in by_env.items():
            points = curves[env_id, name]
            assert points[0] == (0.0, 0, round(report["untrained"]["final10_by_env"][env_id], 3))
            assert points[-1][1:] == (report["log_history"][-1]["step"], round(final10, 3))
    one_env = subprocess.run(script + ["--output", str(tmp_path / "none.png"),
                                       f"adapter={root / 'results' / 'tiny_adapter_offline' / 'short_eval.json'}"],
                             capture_output=True, text=True, timeout=120)
    assert one_env.returncode == 2 and "several envs" in one_env.stderr


def test_leave_one_out_table_reads_each_family_from_the_model_that_left_it_out(tmp_path):
    """experiments/leave_one_out.py: a family's row holds the left-out model's numbers, then the general model's and
    the baselines' (first-10 / final-10 / episodes to the first success); a missing row, and a family played on
    other maps than the general model's, are named."""
    def summary(first: float, last: float, to_first: float) -> dict:
        return {"success_per_episode": [first] * 10 + [0.5] * 10 + [last] * 10, "success_ci95": [0.0] * 30,
                "final10_success": last, "episodes_to_first_success": to_first, "n_maps": 2}

    def write(name: str, icrl: float, family: str = "up_to_8") -> Path:
        players = {"icrl": summary(0.1, icrl, 3.0), "random": summary(0.2, 0.25, 4.0),
                   "q_learning_zero_init": summary(0.3, 0.6, 5.0), "q_learning_optimistic": summary(0.4, 0.95, 2.0)}
        (tmp_path / name).mkdir()
        (tmp_path / name / "envs.json").write_text(json.dumps({"map_families": {ENV_ID: family}, "rows": {
            f"{ENV_ID} held-out": {"paper_ramp": players}}}))
        return tmp_path / name

    script = [sys.executable, str(Path(__file__).parent.parent / "experiments" / "leave_one_out.py"),
              "--general", str(write("general", 0.8))]
    subprocess.run([*script, "--left_out", f"{ENV_ID}={write('without', 0.3)}", "--output_dir",
                    str(tmp_path / "out")], check=True, capture_output=True)
    table = (tmp_path / "out" / "leave_one_out.md").read_text()
    assert (f"| {ENV_ID} | 0.100 / 0.300 / 3.0 | 0.100 / 0.800 / 3.0 | 0.200 / 0.250 / 4.0 | 0.300 / 0.600 / 5.0 | "
            "0.400 / 0.950 / 2.0 |") in table
    assert (tmp_path / "out" / "leave_one_out.png").is_file()
    failed = subprocess.run([*script, "--left_out", f"trl_icrl/RandomMDP-v0={tmp_path / 'without'}",
                             "--output_dir", str(tmp_path / "out")], capture_output=True, text=True)
    assert failed.returncode != 0 and "has no 'trl_icrl/RandomMDP-v0 held-out' row" in failed.stderr
    other_maps = subprocess.run([*script, "--left_out", f"{ENV_ID}={write('on_3_to_5', 0.3, family='id')}",
                                 "--output_dir", str(tmp_path / "out")], capture_output=True, text=True)
    assert other_maps.returncode != 0 and "played trl_icrl/ParametricFrozenLake-v0's 'id' maps" in other_maps.stderr


def test_env_evaluation_plays_the_held_out_maps_of_the_family_trained_on():
    """recipes/evaluate_envs.py: a general model trained on Frozen Lake's up_to_8 family is evaluated on that
    family's held-out maps, not on the env's first family; ENV_ID=FAMILY chooses another."""
    script = Path(__file__).parent.parent / "recipes" / "evaluate_envs.py"
    spec = importlib.util.spec_from_file_location("evaluate_envs", script)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    general = SimpleNamespace(config=SimpleNamespace(env_id=ENV_ID, map_family="up_to_8",
                                                     trained_env_ids=(ENV_ID, "trl_icrl/RandomMDP-v0")))
    envs = [ENV_ID, "trl_icrl/RandomMDP-v0", "trl_icrl/ParametricCliffWalking-v0"]
    assert recipe.heldout_families(general, envs, []) == dict(zip(envs, ["up_to_8", "mdp", "cliff"]))
    assert recipe.heldout_families(general, envs, [f"{ENV_ID}=id"])[ENV_ID] == "id"
    with pytest.raises(ValueError, match="ENV_ID=FAMILY"):
        recipe.heldout_families(general, envs, ["CliffWalking-v1=cliff"])

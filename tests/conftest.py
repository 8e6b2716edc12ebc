import os
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRL_ICRL_HOME", tempfile.mkdtemp(prefix="trl_icrl_home_"))
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="hf_home_"))  # loading the embedded base installs it there
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER") and hasattr(os, "sched_setaffinity"):
    # under ``pytest -n N`` each worker (gw0, gw1, ...) keeps its own share of the cores, and so its children and the
    # trainer's thread count (one thread per usable core): N workers of all cores each would fight over them
    _worker, _workers = int(os.environ["PYTEST_XDIST_WORKER"][2:]), int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    _cores = sorted(os.sched_getaffinity(0))
    _mine = _cores[_worker::_workers] or [_cores[_worker % len(_cores)]]
    os.sched_setaffinity(0, _mine)
    os.environ.setdefault("OMP_NUM_THREADS", str(len(_mine)))

import pytest  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

import trl_icrl.precision  # noqa: E402
from trl_icrl import TokenProtocol, build_tiny_model, frozen_lake_codec  # noqa: E402


@pytest.fixture(autouse=True)
def fp32_unless_asked(monkeypatch):
    """Tests compare numbers worked out in fp32: ``precision="auto"`` resolves to fp32 in this process whatever the
    CPU (the precision tests patch the check themselves, or force ``"bf16"``)."""
    monkeypatch.setattr(trl_icrl.precision, "cpu_bf16_units", lambda: [])


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tokenizer(tiny_dir):
    return AutoTokenizer.from_pretrained(tiny_dir)


@pytest.fixture
def tiny_lm(tiny_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_dir)


@pytest.fixture(scope="session")
def env_codec():
    return frozen_lake_codec("coords")


@pytest.fixture(scope="session")
def protocol(tokenizer, env_codec):
    return TokenProtocol(tokenizer, "compact", env_codec.action_words, env_codec.observation_texts(),
                         env_codec.reward_values)


@pytest.fixture(scope="session")
def step_protocol(tokenizer, env_codec):
    return TokenProtocol(tokenizer, "step", env_codec.action_words, env_codec.observation_texts(),
                         env_codec.reward_values)

"""What a customer does with a train or evaluate instruction (the ClientApp's logic).

Train: load the received shared base and the customer's own adapter (from Context state) into
an :class:`~customer_models.AccessModel`, train both locally on the customer's examples, keep
the adapter and progress in Context state, and reply with the base weights only (plus metrics
and a status). A customer with too few examples replies with status ``insufficient-data``; a
trainer that refuses (privacy budget) replies with its status (:func:`decline`: no weights, the
server counts the node as declined with the reason). A deployment node wraps these handlers
(:mod:`federation.client.deployment_handlers`). Evaluate: the received base with
the customer's adapter, cross-entropy on the customer's validation slice.

Secure aggregation: with SecAgg+ the train instruction arrives as Flower's legacy ``FitIns``
inside the protocol (:func:`serve_secure_train`, called by ``secaggplus_mod``); the same train
handler serves it and the *update* of the base goes into the masked sum instead of the weights.
A run with ``secure-aggregation = true`` refuses a train instruction outside the protocol
(:func:`refuse_plain_train`).

Privacy: with ``dp-sample-level`` the trainer is DP-SGD (:mod:`federation.client.dp_trainer`);
its ledger is saved in Context state even when training fails midway, so spent privacy is never
forgotten. With ``dp-client-level`` the base update is clipped and noised here, before the reply
(:mod:`federation.client.update_privacy`). Under either, the training loss is not sent.
"""

from __future__ import annotations

import functools
import hashlib
import logging

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp.typing import ClientAppCallable
from flwr.common import (
    Code,
    FitRes,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.compat.common import recorddict_compat as compat

from customer_models import AccessModel
from customer_models.training import evaluate_loss
from federation.app_config import (
    ARRAYS_KEY,
    CONFIG_KEY,
    METRICS_KEY,
    NUM_EXAMPLES,
    SECAGG_STATUS_METRICS,
    STATUS_BUDGET_EXHAUSTED,
    STATUS_INSUFFICIENT_DATA,
    STATUS_KEY,
    STATUS_OK,
    STATUS_SECURE_AGGREGATION_REQUIRED,
    FederationConfig,
)
from federation.client.customer_data import CustomerDataSource, customer_of
from federation.client.customer_examples import CustomerExamples, customer_examples
from federation.client.customer_state import CustomerState
from federation.client.local_trainer import (
    NO_DP_EPSILON,
    LocalTrainer,
    LocalTrainingTask,
    TrainingRefusedError,
)
from federation.client.update_privacy import client_level_epsilon, privatize_base

_log = logging.getLogger(__name__)


def handle_train(
    message: Message,
    context: Context,
    config: FederationConfig,
    data_source: CustomerDataSource,
    trainer: LocalTrainer,
) -> Message:
    """Train on a customer's data and reply with the shared base only.

    Parameters
    ----------
    message
        The train instruction (``arrays``: the global base; ``config``: round, FedProx's μ).
    context
        The ClientApp context (``node_config`` names the customer; ``state`` persists).
    config
        The run configuration.
    data_source
        Gives the customer's trace.
    trainer
        Local trainer (its state is restored from and saved to Context state).
    """
    state = CustomerState(context.state)
    customer, count = customer_of(context.node_config)
    instruction = message.content.config_records.get(CONFIG_KEY, ConfigRecord())
    server_round = int(instruction.get("server-round", 0))  # type: ignore[arg-type]
    mu = instruction.get("proximal-mu", 0.0)
    data = _examples(config, data_source, state, customer, count)
    if data.train_index.size < config.min_examples or data.validation_index.size == 0:
        reason = (
            f"customer has {data.train_index.size} training and {data.validation_index.size} "
            f"validation examples; at least {config.min_examples} and 1 are needed"
        )
        _log.warning("round %d: not training: %s", server_round, reason)
        return _status_reply(message, STATUS_INSUFFICIENT_DATA, reason, train=True)
    spent = client_budget_exceeded(config, state)
    if spent is not None:
        # Checked before training: a round whose update may not be released spends nothing.
        _log.warning("round %d: not training: %s", server_round, spent)
        return _status_reply(message, STATUS_BUDGET_EXHAUSTED, spent, train=True)
    received = _received_base(message)
    model = _customer_model(config, state, received, customer)
    task = LocalTrainingTask(
        model=model,
        data=data,
        global_base=received,
        server_round=server_round,
        epochs=config.local_epochs,
        max_steps=config.local_steps,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        proximal_mu=float(mu) if isinstance(mu, int | float) else 0.0,
        seed=_seed(config.seed, customer, server_round),
        private_seed=state.private_seed(f"dp-sgd/{server_round}/{state.rounds_trained}"),
    )
    trainer.load_state_dict(state.trainer_state())
    try:
        result = trainer.train(task)
    except TrainingRefusedError as exc:
        _log.warning("round %d: trainer refused: %s", server_round, exc)
        return _status_reply(message, exc.code, exc.reason, train=True)
    finally:
        # A DP ledger records steps taken even by a session that failed: keep it in any case.
        state.save_trainer_state(trainer.state_dict())
    state.save_adapter(model.adapter_state())
    weights = model.base_state()
    if config.privacy.client_level:
        weights = _privatize(config, state, weights, received, server_round)
    state.record_round(server_round, result.steps)
    base = ArrayRecord({k: v.contiguous() for k, v in weights.items()})
    metrics = MetricRecord(
        {
            NUM_EXAMPLES: result.examples,
            "local-steps": result.steps,
            "train-loss": 0.0 if _any_dp(config) else result.train_loss,
            "epsilon": result.epsilon,
        }
    )
    content = RecordDict(
        {ARRAYS_KEY: base, METRICS_KEY: metrics, STATUS_KEY: _status(STATUS_OK, "")}
    )
    return Message(content, reply_to=message)


def serve_secure_train(
    message: Message,
    context: Context,
    config: FederationConfig,
    train: ClientAppCallable,
) -> Message:
    """Answer SecAgg+'s masked-update stage with the plain train handler.

    Flower's ``secaggplus_mod`` passes the legacy ``FitIns`` (the base tensors in sorted name
    order, the round's config) and expects a legacy ``FitRes``, whose parameters it weights by
    the example count, clips, quantizes and masks, and then clears before the reply leaves.
    This turns the instruction into the usual train message, lets ``train`` handle it, and
    returns the base *update* ``w_local - w_global`` (all zeros with 0 examples when the
    customer does not train, so the other customers' masks still cancel). The status code and
    reason ride in the metrics (:data:`~federation.app_config.SECAGG_STATUS_METRICS`).

    Raises
    ------
    ValueError
        If the instruction does not carry one tensor per base tensor.
    """
    names = _base_names(config)
    fitins = compat.recorddict_to_fitins(message.content, keep_input=True)
    arrays = parameters_to_ndarrays(fitins.parameters)
    if len(arrays) != len(names) or any(a.dtype.kind != "f" for a in arrays):
        raise ValueError(
            f"SecAgg+ instruction carries {len(arrays)} tensors, the base has {len(names)}"
        )
    received = dict(zip(names, arrays, strict=True))
    message.content = RecordDict(
        {
            ARRAYS_KEY: ArrayRecord(
                {n: Array(np.ascontiguousarray(a)) for n, a in received.items()}
            ),
            CONFIG_KEY: ConfigRecord(dict(fitins.config)),
        }
    )
    reply = train(message, context)
    status = reply.content.config_records.get(STATUS_KEY, ConfigRecord())
    code, reason = str(status.get("code", "")), str(status.get("reason", ""))
    metrics = dict(reply.content.metric_records[METRICS_KEY])
    sent = reply.content.array_records.get(ARRAYS_KEY)
    if code == STATUS_OK and sent is not None:
        update = [(sent[n].numpy() - received[n]).astype(received[n].dtype) for n in names]
        examples = int(metrics[NUM_EXAMPLES])  # type: ignore[arg-type]
    else:
        update = [np.zeros_like(received[n]) for n in names]
        examples = 0
    status_code, status_reason = SECAGG_STATUS_METRICS
    fitres = FitRes(
        status=Status(Code.OK, reason),
        parameters=ndarrays_to_parameters(update),
        num_examples=examples,
        metrics={**metrics, status_code: code, status_reason: reason},  # type: ignore[dict-item]
    )
    return Message(compat.fitres_to_recorddict(fitres, keep_input=False), reply_to=message)


def refuse_plain_train(message: Message) -> Message:
    """Refuse a train instruction outside SecAgg+ (the run requires secure aggregation)."""
    _log.warning("refusing to train: the run requires secure aggregation")
    return _status_reply(
        message,
        STATUS_SECURE_AGGREGATION_REQUIRED,
        "this run requires secure aggregation (SecAgg+); the base is only sent masked",
        train=True,
    )


@functools.lru_cache(maxsize=4)
def _base_names(config: FederationConfig) -> list[str]:
    """Return the shared base's tensor names in sorted order (the SecAgg+ tensor order)."""
    with torch.random.fork_rng(devices=[]):
        return sorted(AccessModel(config.model).base_state())


def handle_evaluate(
    message: Message, context: Context, config: FederationConfig, data_source: CustomerDataSource
) -> Message:
    """Evaluate the received base with the customer's adapter on its validation slice."""
    state = CustomerState(context.state)
    customer, count = customer_of(context.node_config)
    data = _examples(config, data_source, state, customer, count)
    if data.validation_index.size == 0:
        return _status_reply(
            message, STATUS_INSUFFICIENT_DATA, "customer has no validation examples", train=False
        )
    model = _customer_model(config, state, _received_base(message), customer)
    loss = evaluate_loss(model, data.examples, data.validation_index, data.history)
    metrics = MetricRecord({NUM_EXAMPLES: int(data.validation_index.size), "eval-loss": loss})
    content = RecordDict({METRICS_KEY: metrics, STATUS_KEY: _status(STATUS_OK, "")})
    return Message(content, reply_to=message)


def _examples(
    config: FederationConfig,
    data_source: CustomerDataSource,
    state: CustomerState,
    customer: int,
    count: int,
) -> CustomerExamples:
    data = data_source.customer_data(customer, count)
    return customer_examples(
        data.trace,
        state.key_encoder(),
        config.model,
        max_samples=config.max_samples,
        seed=_seed(config.seed, customer, 0),
        label_horizon=config.label_horizon,
        train_fraction=data.train_fraction,
    )


def _privatize(
    config: FederationConfig,
    state: CustomerState,
    weights: dict[str, torch.Tensor],
    received: dict[str, torch.Tensor],
    server_round: int,
) -> dict[str, torch.Tensor]:
    """Clip and noise the base update (client-level DP) and account the release."""
    settings = config.privacy
    seed = state.private_seed(f"client-dp/{server_round}/{state.rounds_trained}")
    noised, norm = privatize_base(
        weights,
        received,
        clip=settings.client_clip,
        noise_multiplier=settings.client_noise,
        seed=seed,
    )
    releases = state.client_dp_releases + 1
    epsilon = client_level_epsilon(settings.client_noise, releases, settings.delta)
    state.record_client_dp(releases, epsilon)
    _log.info(
        "round %d: client-level DP: update norm %.4g clipped to %.4g, noise σ=%.4g; "
        "client-level ε=%.4g (δ=%.3g) after %d releases",
        server_round,
        norm,
        settings.client_clip,
        settings.client_noise,
        epsilon,
        settings.delta,
        releases,
    )
    return noised


def client_budget_exceeded(config: FederationConfig, state: CustomerState) -> str | None:
    """Say why the customer's next client-level DP release would exceed its budget, if it would.

    Returns ``None`` when client-level DP is off, when ``dp-client-max-epsilon`` is 0 (no limit)
    or when one more release keeps the client-level ε within the budget; otherwise the reason
    the customer declines the round with.
    """
    settings = config.privacy
    if not settings.client_level or settings.client_max_epsilon <= 0.0:
        return None
    releases = state.client_dp_releases + 1
    after = client_level_epsilon(settings.client_noise, releases, settings.delta)
    if after <= settings.client_max_epsilon:
        return None
    return (
        f"client-level privacy budget: release {releases} would bring ε to {after:.4g} "
        f"(δ={settings.delta:.3g}), above dp-client-max-epsilon = {settings.client_max_epsilon:g}"
    )


def _any_dp(config: FederationConfig) -> bool:
    return config.privacy.sample_level or config.privacy.client_level


def _received_base(message: Message) -> dict[str, torch.Tensor]:
    record = message.content.array_records[ARRAYS_KEY]
    return {name: torch.from_numpy(array.numpy().copy()) for name, array in record.items()}


def _customer_model(
    config: FederationConfig, state: CustomerState, base: dict[str, torch.Tensor], customer: int
) -> AccessModel:
    """Build the model: the received base plus the customer's adapter (fresh on first use)."""
    torch.manual_seed(_seed(config.seed, customer, -1))
    model = AccessModel(config.model)
    model.load_base_state(base)
    adapter = state.adapter()
    if adapter is not None:
        model.load_adapter_state(adapter)
    return model


def _seed(seed: int, customer: int, server_round: int) -> int:
    digest = hashlib.sha256(f"{seed}/{customer}/{server_round}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def _status(code: str, reason: str) -> ConfigRecord:
    return ConfigRecord({"code": code, "reason": reason})


def decline(message: Message, code: str, reason: str, *, train: bool) -> Message:
    """Decline ``message``: reply without weights, with status ``code`` and ``reason``.

    The server counts such a reply as failed with its reason (the round goes on without it).

    Parameters
    ----------
    message
        The train or evaluate instruction.
    code, reason
        The reply's status (``code`` other than ``ok``).
    train
        Whether ``message`` is a train instruction (decides the metric keys).
    """
    _log.warning(
        "declining the %s instruction: %s: %s", "train" if train else "evaluate", code, reason
    )
    return _status_reply(message, code, reason, train=train)


def _status_reply(message: Message, code: str, reason: str, *, train: bool) -> Message:
    """Reply without weights, with a status saying why (metrics zero, keys as usual)."""
    if train:
        metrics = MetricRecord(
            {NUM_EXAMPLES: 0, "local-steps": 0, "train-loss": 0.0, "epsilon": NO_DP_EPSILON}
        )
    else:
        metrics = MetricRecord({NUM_EXAMPLES: 0, "eval-loss": 0.0})
    content = RecordDict({METRICS_KEY: metrics, STATUS_KEY: _status(code, reason)})
    return Message(content, reply_to=message)

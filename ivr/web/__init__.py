"""The Flask app factory: one blueprint per concern (voice webhooks, admin API)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from typing import Any, Callable

from flask import Flask, jsonify

from ivr.counters import snapshot
from ivr.errors import FlowError
from ivr.flows.registry import FlowRegistry
from ivr.live.calls_store import SQLiteStore, Store
from ivr.live.roster import AgentSpec, load_roster
from ivr.live.routing import POLICY_FILE, LiveRouting, policy_problems, routing_policy
from ivr.live.routing_store import JournalRoutingState, RoutingState
from ivr.live.stores import (
    open_floor_log,
    open_room_log,
    open_store,
    open_users,
    open_versions,
    outbox_of,
    routing_state,
)
from ivr.live.telephony import NoTelephony, Telephony, TwilioTelephony
from ivr.web.live import Hub, picture
from ivr.web.settings import Settings

log = logging.getLogger("ivr.web")

INSECURE_BANNER = (
    "TWILIO SIGNATURE VALIDATION IS OFF (IVR_VALIDATE_SIGNATURES=0 / --no-validate): anyone "
    "who can reach this server can drive calls. Use this only on your own machine."
)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def create_app(settings: Settings | None = None, *, store: Store | None = None,
               clock: Callable[[], dt.datetime] = utc_now,
               registry: FlowRegistry | None = None,
               routing_state: RoutingState | None = None) -> Flask:
    """Build the app. Raises :class:`ivr.errors.FlowError` if any flow is invalid: a
    server never starts on a broken flow."""
    settings = settings or Settings.from_env()
    app = Flask(__name__, template_folder="../templates", static_folder="../static")
    app.config["IVR"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.extensions["ivr.flows"] = registry or FlowRegistry.open(settings.flows_dir,
                                                               settings.default_flow)
    app.extensions["ivr.store"] = store or open_store(settings)
    if app.extensions["ivr.flows"].versions is None:
        app.extensions["ivr.flows"].attach(open_versions(app.extensions["ivr.store"]))
    app.extensions["ivr.clock"] = clock
    if not settings.validate_signatures:
        log.warning(INSECURE_BANNER)
    elif not settings.auth_token:
        log.warning("TWILIO_AUTH_TOKEN is not set: every webhook will be rejected with 403 "
                    "until it is (try flows without a phone with `ivr call`)")

    app.extensions["ivr.routing"] = _make_routing(settings, app.extensions["ivr.flows"],
                                                  app.extensions["ivr.store"], routing_state,
                                                  clock)

    from ivr.web import (
        admin,
        agents,
        auth,
        desktop,
        errors,
        metrics,
        queueing,
        reports,
        safe,
        studio,
        voice,
        wallboard,
    )

    auth.init_app(app, open_users(app.extensions["ivr.store"], clock))
    floor_log = app.extensions["ivr.floor"] = open_floor_log(app.extensions["ivr.store"])
    routing = app.extensions["ivr.routing"]
    routing.floor = floor_log  # holds and consults: what the caller should hear
    routing.rooms = app.extensions["ivr.rooms"] = open_room_log(app.extensions["ivr.store"])
    app.extensions["ivr.live"] = Hub(read=lambda t: routing.state.query(
        lambda router: picture(router, t, floor_log.last_id())))
    app.register_blueprint(desktop.bp)
    app.register_blueprint(wallboard.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(voice.bp)
    app.register_blueprint(safe.bp)
    app.register_blueprint(queueing.bp)
    app.register_blueprint(agents.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(studio.bp)
    metrics.install(app)
    app.add_url_rule("/healthz", "healthz", _healthz)
    errors.register(app)
    if settings.reload_interval_s > 0 or settings.routing_tick_s > 0:
        app.before_request(_background(app, settings))
    return app


def _make_routing(settings: Settings, registry: FlowRegistry, store: Store,
                  state: RoutingState | None, clock: Callable[[], dt.datetime]) -> LiveRouting:
    """The live router over the flows' routing policy; refuses flows that route to a
    queue, skill or language the policy lacks."""
    policy = routing_policy(settings.flows_dir, registry.flows)
    where = str(settings.flows_dir / POLICY_FILE)
    problems = policy_problems(registry.flows, policy, where)
    if problems:
        raise FlowError(problems)
    registry.extra_check = lambda flows: policy_problems(flows, policy, where)
    roster = load_roster(settings.flows_dir, policy)
    if state is None:
        state = routing_state(store, policy)
    _install_roster(state, roster, clock().timestamp())
    telephony: Telephony = NoTelephony()
    if settings.account_sid and settings.auth_token:
        telephony = TwilioTelephony(settings.account_sid, settings.auth_token,
                                    settings.twilio_api_url)
    else:
        log.warning("TWILIO_ACCOUNT_SID is not set: calls are routed, but reserved agents "
                    "cannot be connected until it is")
    outbox = outbox_of(store)
    return LiveRouting(state, telephony, settings.public_url,
                       timezone=registry.default().spec.timezone, outbox=outbox, clock=clock,
                       bridge=settings.agent_bridge)


def _healthz() -> Any:
    """200 while the flows are loaded and the store takes writes; 503 otherwise, so a load
    balancer moves traffic away (callers already here get the safe path)."""
    from flask import current_app

    try:
        current_app.extensions["ivr.store"].ping()
        flows = sorted(current_app.extensions["ivr.flows"].flows)
    except Exception as exc:  # a health check reports, it never raises
        return jsonify(status="unavailable", error=str(exc), counters=snapshot()), 503
    return jsonify(status="ok", flows=flows, counters=snapshot())


def _install_roster(state: RoutingState, roster: list[AgentSpec], now: float) -> None:
    """Agents of the roster join the router (logged out) unless already there; a changed
    roster updates their skills, languages and capacity."""
    if not roster:
        return
    with state.update() as router:
        for spec in roster:
            agent = router.agents.get(spec.id)
            if agent is None:
                router.add_agent(spec.agent(), now)
            elif (agent.skills, agent.languages, agent.capacity) != (
                    spec.skills, frozenset(spec.languages), spec.capacity):
                router.update_agent(spec.id, now, skills=dict(spec.skills),
                                    languages=list(spec.languages), capacity=spec.capacity)
    for spec in roster:
        if state.contact(spec.id) != spec.contact:
            state.set_contact(spec.id, spec.contact)


def _background(app: Flask, settings: Settings) -> Callable[[], None]:
    """Start, once per worker process, the threads that reload changed flow files and run
    the router's due timers (relaxation, overflow, offer timeouts, wrap-up ends), so
    neither runs inside a webhook's time budget."""
    state: dict[str, Any] = {"pid": None}
    lock = threading.Lock()
    registry: FlowRegistry = app.extensions["ivr.flows"]
    routing: LiveRouting = app.extensions["ivr.routing"]

    def reload() -> None:
        registry.refresh(time.monotonic(), min_interval=0.0)

    def tick() -> None:
        routing.run(routing.tick(utc_now()))

    def every(interval: float, job: Callable[[], None], name: str) -> None:
        def loop() -> None:
            while True:
                time.sleep(interval)
                try:
                    job()
                except Exception:
                    log.exception(f"{name} failed; will try again")

        threading.Thread(target=loop, name=f"ivr-{name}", daemon=True).start()

    def ensure() -> None:
        if state["pid"] == os.getpid():
            return
        with lock:
            if state["pid"] == os.getpid():
                return
            state["pid"] = os.getpid()
            if settings.reload_interval_s > 0:
                every(settings.reload_interval_s, reload, "flow-reload")
            if settings.routing_tick_s > 0:
                every(settings.routing_tick_s, tick, "routing-tick")
                routing.background = True  # from now on webhooks only wake the sender
                if isinstance(routing.state, JournalRoutingState):
                    routing.state.background_snapshots = True  # written off the hot path
                store = app.extensions["ivr.store"]
                if isinstance(store, SQLiteStore):
                    store.checkpoint_in_background = True  # this worker's connections
                    every(1.0, store.checkpoint, "wal-checkpoint")
                threading.Thread(target=routing.sender_loop, args=(threading.Event(),),
                                 name="ivr-outbox", daemon=True).start()

    return ensure

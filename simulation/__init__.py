"""The staffing simulator: replay traffic through the production router; find the staff.

Describing a model is separate from running it; results are flat records; KPIs are
pure functions over records. One module per noun:

``scenario``       Scenario (pydantic) and ``load_scenario(path)``; ``scenario_json_schema()``
``times``          ``parse_instant``: seconds, HH:MM or ISO 8601 from the scenario's time 0
``traffic``        ``draw_plan(scenario, rng)`` -> CallPlan (who calls, when, why, how long, how
                   patiently); call-log replay (``read_call_log``, ``read_scenario_log``)
``distributions``  ``sample(Distribution, rng, n)`` (exponential, lognormal, gamma, weibull,
                   deterministic, empirical, survival); ``sample_above`` for censored waits
``roster``         ``build_roster(scenario)`` -> agents, skills and logged-in spans (shifts,
                   per-interval head counts, staffing tables, rosters)
``router_port``    the narrow interface the event loop asks for decisions (RouterPort)
``live_router``    LiveRouter: RouterPort over ``routing.router.Router`` (the production router)
``engine``         ``simulate_plan(scenario, plan, roster, router)`` -> CallRecords, AgentSpans,
                   on a ``simpy.Environment``; ``Twin``: what added SimPy processes may do
``events``         a scenario's ``events:`` (outage, campaign, meeting) as SimPy processes
``records``        CallRecords, AgentSpans, Replication (flat arrays)
``kpis``           KPI_DEFINITIONS, ``call_kpis``, ``occupancy``, ``replication_kpis``,
                   ``interval_kpis``, ``breakdown_kpis`` (pure functions over records)
``confidence``     ``mean_ci(values)``: Student-t 95% interval over replications
``runner``         ``run_scenario(scenario, workers=None)`` -> RunResult (replications on all
                   cores, ``SeedSequence(seed).spawn`` per replication: same seed, same numbers)
``erlang``         Erlang B, Erlang C, Erlang A (M/M/c+M) and ``agents_for_targets``
``staffing``       ``find_staffing(scenario, Targets(...))`` -> StaffingPlan (Erlang start,
                   simulate-and-correct)
``validation``     simulator-vs-Erlang agreement tables
``charts``         PNG charts of a run (matplotlib, optional)
``cli``            ``add_commands(subparsers)``: ``ivr simulate``, ``ivr staff``, ``ivr erlang``
``errors``         SimulationError (root), ScenarioError(file, field, message), AnalyticError,
                   RouterContractError

Typical use::

    from simulation.scenario import load_scenario
    from simulation.runner import run_scenario

    result = run_scenario(load_scenario("scenarios/textbook.yaml"))
    result.summary["service_level"]   # {"mean": ..., "ci_low": ..., "ci_high": ..., "n": ...}
"""

"""Fleets of emulated stations: templates, the behaviour model, scenarios, statistics,
reports and the runner behind ``ocppkit fleet``.

Layer: above :mod:`ocppkit.station` (it drives :class:`ocppkit.station.station.Station`
objects), below the CLI; it never imports ``csms``, ``api`` or ``node``, so a fleet can be
pointed at any CSMS.
"""

from ocppkit.fleet.behaviour import BehaviourSettings, plan_sessions
from ocppkit.fleet.scenario import Scenario, ScenarioResult, load_scenario, parse_scenario
from ocppkit.fleet.stats import FleetStats
from ocppkit.fleet.template import FleetTemplate, TemplateError, load_template, parse_template

__all__ = [
    "BehaviourSettings",
    "FleetStats",
    "FleetTemplate",
    "Scenario",
    "ScenarioResult",
    "TemplateError",
    "load_scenario",
    "load_template",
    "parse_scenario",
    "parse_template",
    "plan_sessions",
]

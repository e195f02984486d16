"""Declarative IVR flows: the file format, its checks and the loader."""

from ivr.flows.loader import HUMAN_NODE, Flow, flow_files, load_flow, load_flows
from ivr.flows.models import FlowSpec, flow_json_schema

__all__ = ["HUMAN_NODE", "Flow", "FlowSpec", "flow_files", "flow_json_schema", "load_flow",
           "load_flows"]

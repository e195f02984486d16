"""The live side of the service: what the webhooks drive and where their state lives.

==================  ==========================================================
``calls_store``     call sessions, TwiML per turn, route requests, the audit log
``routing_store``   the shared router's state and its decisions, per backend
``routing``         the pure router driven by the webhooks, and the effects of its decisions
``telephony``       what routing asks of Twilio's REST API (redirect, ring back)
``roster``          ``agents.yaml``: which agents exist and how to reach them
==================  ==========================================================
"""

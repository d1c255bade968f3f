"""The call at the centre: a live call, its flow of states, its stored state, the dialplan's
Stasis() contract and the service that starts, drives, resumes and ends calls.

Imports no feature: the IVR's menus and the queues' states plug in through
:class:`calls.registry.StateRegistry` and their states' constructors.
"""

"""The local lab of keneyapp.deploy: real components on loopback, started by the project.

Lab code, not part of the collection. ``python -m keneyapp_lab up|down|env|status``;
``make lab-up`` / ``make lab-down`` / ``make lab-env`` call it. See README "The local lab".
"""

"""The escalation lab: a local web app to replay the campaign under two policies on the same dice.

:mod:`sim.lab.levers` (the controls and presets), :mod:`sim.lab.state` (the state a URL holds),
:mod:`sim.lab.engine` (what a page asks of the library), :mod:`sim.lab.app` (the web server).
"""

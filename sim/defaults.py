"""What a run uses unless told otherwise (a module of its own, so that the command line can show
the defaults without loading the model)."""

#: The root seed every command and :func:`sim.runner.run` use unless told otherwise (the campaign's
#: first day, 2023-10-17).
DEFAULT_SEED = 20231017
#: Replications of :func:`sim.runner.run` and ``esim run`` unless told otherwise.
DEFAULT_REPS = 200
#: Replications a parameter draw when a run goes over a posterior (sim.posterior): D draws x R.
DEFAULT_REPS_PER_DRAW = 10

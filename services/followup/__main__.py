from kernel.runtime import main
from services.followup import instrument
from services.followup.app import APP

# Fail fast: a bad survey instrument file stops the process here (exit status 2) with its line and reason.
instrument.load_or_exit()
main(APP)

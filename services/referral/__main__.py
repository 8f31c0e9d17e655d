from kernel.runtime import main
from services.referral import rules
from services.referral.app import APP

# Fail fast: a bad routing rules file stops the process here (exit status 2) with its line and reason.
rules.load_or_exit()
main(APP)

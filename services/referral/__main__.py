from kernel.runtime import main
from services.referral.app import APP

main(APP)

from kernel.runtime import main
from services.followup.app import APP

main(APP)

from kernel.runtime import main
from services.intake.app import APP

main(APP)

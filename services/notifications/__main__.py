from kernel.runtime import main
from services.notifications.app import APP

main(APP)

"""Certificate and CA health report; changes nothing.

pyinfra inventories/<environment>.py deploys/status.py
"""

from deploys.components.status import status_report

print(status_report(), flush=True)

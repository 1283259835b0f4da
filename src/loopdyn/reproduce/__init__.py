"""`loopdyn reproduce` and `loopdyn report`: every paper experiment trained, analysed and drawn into one
directory with an HTML report (`index.html`), and the same kind of page for any stores.

The experiments taking part are those of the registry that declare `reproduce`
(:class:`loopdyn.experiments.Reproduce`); adding one to the report is that declaration.
"""

from ._page import write_page as write_page
from ._pipeline import Item as Item
from ._pipeline import plan as plan
from ._pipeline import report as report
from ._pipeline import reproduce as reproduce

"""Figures: style, stage shading, gain-plane panels, the training overview, and every experiment's panels and
figures (`figure_1c`, `figure_2`, `figure_3`-`figure_5`, `figure_6`, `figure_memory`, the ablations' panels),
drawn from stores; the experiments (:mod:`loopdyn.experiments`) choose which to draw."""

from ._ablations import condition_colors as condition_colors
from ._ablations import condition_epochs as condition_epochs
from ._ablations import condition_runs as condition_runs
from ._ablations import first_run as first_run
from ._ablations import gains_panel as gains_panel
from ._ablations import loss_bands_panel as loss_bands_panel
from ._ablations import no_nan_warning as no_nan_warning
from ._ablations import MANY_CONDITIONS as MANY_CONDITIONS
from ._ablations import vertical_ticks as vertical_ticks
from ._ablations import strip_panel as strip_panel
from ._closed_vs_open import figure_1c as figure_1c
from ._closed_vs_open import figure_2 as figure_2
from ._gains import GAIN_AXES as GAIN_AXES
from ._gains import LANDSCAPE_LABEL as LANDSCAPE_LABEL
from ._gains import boundaries as boundaries
from ._gains import gain_path as gain_path
from ._gains import landscape as landscape
from ._gains import path as path
from ._gains import stage_points as stage_points
from ._invisible_memory import figure_memory as figure_memory
from ._nonlinear import figure_nonlinear_stages as figure_nonlinear_stages
from ._stages import closed_run as closed_run
from ._stages import figure_3 as figure_3
from ._stages import figure_4 as figure_4
from ._stages import figure_5 as figure_5
from ._stages import figure_stage2_theory as figure_stage2_theory
from ._stages import run_stages as run_stages
from ._style import CLOSED_BLUE as CLOSED_BLUE
from ._style import FIGURE_WIDTH as FIGURE_WIDTH
from ._style import OPEN_RED as OPEN_RED
from ._style import STAGE1_MARK as STAGE1_MARK
from ._style import STAGE2_MARK as STAGE2_MARK
from ._style import STAGE_COLORS as STAGE_COLORS
from ._style import label_panels as label_panels
from ._style import log_limits as log_limits
from ._style import save_figures as save_figures
from ._style import shade_stages as shade_stages
from ._style import unit_circle as unit_circle
from ._tracking import figure_6 as figure_6
from ._style import mathtext as mathtext
from ._training import training_figure as training_figure
from ._view import view_page as view_page

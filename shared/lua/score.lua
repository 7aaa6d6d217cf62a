-- A message's score in its thread's index: order * SPAN + stepOrder (shared.score.STEP_SPAN,
-- which tests/shared/test_lua.py checks against this file). Included, not run alone.
local SPAN = 1048576
local function score_of(order, step) return string.format('%d', order * SPAN + step) end

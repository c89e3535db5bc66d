-- A slot's deploys, newest first, without walking its whole stage: what `prune`, retire and
-- `remove` read for each live slot to know which images it keeps (issue 26). With only
-- (project, stage, id), the query for one tag visited every deploy of the stage, so its cost
-- grew with the number of previews in the stage.
CREATE INDEX deploys_by_slot ON deploys (project, stage, tag, id);

-- Times a gateway sent in milliseconds (Portkey's mappings of Bedrock, Vertex AI and Fireworks
-- fine-tunes use JavaScript's Date.getTime()) were stored as if seconds: jobs created millennia
-- ahead, never reaching a time limit. ftguard now reads any time from 100,000,000,000 on as
-- milliseconds (`provider::payload::unix_seconds`; as seconds that is the year 5138); this brings
-- the rows stored before in line. A job stored under both units, should one ever have been,
-- keeps its millisecond row rather than failing the upgrade on the unique key: reads convert it
-- the same.
UPDATE OR IGNORE jobs SET created_at = created_at / 1000 WHERE created_at >= 100000000000;
UPDATE jobs SET finished_at = finished_at / 1000 WHERE finished_at >= 100000000000;
UPDATE jobs SET estimated_finish = estimated_finish / 1000 WHERE estimated_finish >= 100000000000;
UPDATE jobs SET last_step_at = last_step_at / 1000 WHERE last_step_at >= 100000000000;
UPDATE actions SET response_finished_at = response_finished_at / 1000
    WHERE response_finished_at >= 100000000000;

/** Socket fuzzing, `--driver-writes-secrets` mode: every returned path must be one the driver accepts; see
 * socket-fuzz.ts. */
import { defineSocketFuzz } from './socket-fuzz.js';

defineSocketFuzz(true);

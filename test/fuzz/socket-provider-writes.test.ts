/** Socket fuzzing, provider-writes mode (the default): see socket-fuzz.ts. */
import { defineSocketFuzz } from './socket-fuzz.js';

defineSocketFuzz(false);

// The TFTP suite (tftp.suite.ts) against the native transfer engine (native/tftp_engine.c).
import { tftpSuite } from './tftp.suite.js';

tftpSuite('native');

// The TFTP suite (tftp.suite.ts) against the JavaScript transfer engine (transfer.ts), used when the addon is not built.
import { tftpSuite } from './tftp.suite.js';

tftpSuite('js');

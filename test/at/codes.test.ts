/** Every CMS/CME code the issue names has a 3GPP meaning and a retry class. */
import { describe, expect, it } from 'vitest';
import { cmeInfo, cmsInfo, codeOfText } from '../../modem/at/codes.js';

describe('+CMS ERROR codes (27.005 §3.2.5, 24.011 Annex E, 23.040 §9.2.3.22)', () => {
  it.each([
    [21, 'short message transfer rejected', 'permanent'],
    [27, 'destination out of order', 'retry-same'],
    [28, 'unidentified subscriber', 'permanent'],
    [38, 'network out of order', 'retry-other'],
    [41, 'temporary failure', 'retry-same'],
    [42, 'congestion', 'retry-same'],
    [47, 'resources unavailable, unspecified', 'retry-same'],
    [50, 'requested facility not subscribed', 'retry-other'],
    [69, 'requested facility not implemented', 'retry-other'],
    [96, 'invalid mandatory information', 'permanent'],
    [111, 'protocol error, unspecified', 'retry-same'],
    [304, 'invalid PDU mode parameter', 'permanent'],
    [305, 'invalid text mode parameter', 'permanent'],
    [310, 'SIM not inserted', 'retry-other'],
    [311, 'SIM PIN required', 'retry-other'],
    [312, 'PH-SIM PIN required', 'retry-other'],
    [313, 'SIM failure', 'retry-other'],
    [314, 'SIM busy', 'retry-same'],
    [315, 'SIM wrong', 'retry-other'],
    [316, 'SIM PUK required', 'retry-other'],
    [320, 'memory failure', 'retry-same'],
    [321, 'invalid memory index', 'permanent'],
    [322, 'memory full', 'retry-same'],
    [325, 'CMS error 325 (not defined by 3GPP)', 'retry-same'],
    [330, 'SMSC address unknown', 'retry-other'],
    [331, 'no network service', 'retry-other'],
    [332, 'network timeout', 'retry-same'],
    [500, 'unknown error', 'retry-same'],
    [512, 'manufacturer-specific CMS error 512', 'retry-same'],
    [1, 'unassigned (unallocated) number', 'permanent'],
  ])('%i: %s (%s)', (code, meaning, retry) => {
    expect(cmsInfo(code)).toEqual({ meaning, retry });
  });
});

describe('+CME ERROR codes (27.007 §9.2)', () => {
  it.each([
    [10, 'SIM not inserted', 'retry-other'],
    [11, 'SIM PIN required', 'retry-other'],
    [16, 'incorrect password', 'retry-other'],
    [21, 'invalid index', 'permanent'],
    [27, 'invalid characters in dial string', 'permanent'],
    [30, 'no network service', 'retry-other'],
    [100, 'unknown', 'retry-same'],
    [600, 'manufacturer-specific CME error 600', 'retry-same'],
  ])('%i: %s (%s)', (code, meaning, retry) => {
    expect(cmeInfo(code)).toEqual({ meaning, retry });
  });

  it('maps the verbose text form back to the number', () => {
    expect(codeOfText('CME', 'SIM PIN required')).toBe(11);
    expect(codeOfText('CMS', 'Network timeout')).toBe(332);
    expect(codeOfText('CME', 'no such thing')).toBeNull();
  });
});

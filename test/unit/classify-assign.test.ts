/**
 * What an assign call's answer (a restore, `reassign: false`) and a customer-details answer mean.
 */
import { describe, expect, it } from '@jest/globals';

import { agentInDetails, type ApiOutcome, ASSIGNED_SINCE_REASON, classify, classifyAssign } from '../../src/execution/classify.js';

const NOW = Date.parse('2025-11-25T10:00:00.000Z');
const response = (statusCode: number, body?: unknown, extra: Partial<ApiOutcome> = {}): ApiOutcome =>
  ({ kind: 'response', statusCode, body, latencyMs: 5, ...extra }) as ApiOutcome;

describe('classifyAssign: an assign answer → what the worker does', () => {
  it('409 (assumed: the chat has an agent and reassign was false) is a skip, never a failure to retry', () => {
    expect(classifyAssign(response(409, { statusCode: 409, message: 'Chat is already assigned' }), NOW)).toEqual({
      kind: 'skipped',
      reason: `${ASSIGNED_SINCE_REASON} (HTTP 409: Chat is already assigned)`,
    });
    expect(classifyAssign(response(409), NOW)).toEqual({ kind: 'skipped', reason: ASSIGNED_SINCE_REASON });
  });

  it.each([
    ['201 with the agent', response(201, { name: 'Asha', email: 'a@x.io', phone: '919811111111' })],
    ['201 without a body', response(201)],
    ['400 with an array message', response(400, { statusCode: 400, message: ['assignedUserPhoneNumber must be 7 to 15 digits'] })],
    ['401', response(401, { message: 'Invalid public api key' })],
    ['422 not a team member', response(422, { statusCode: 422, message: 'User is not a member of the team' })],
    ['429 with Retry-After', response(429, {}, { retryAfter: '3' })],
    ['503', response(503)],
    ['a network error', { kind: 'network', code: 'ECONNRESET', message: 'x', latencyMs: 1 } as ApiOutcome],
    ['a 302', response(302, '', { location: 'https://portal.example/login' })],
  ])('%s reads as an unassign answer would', (_name, outcome) => {
    expect(classifyAssign(outcome, NOW, { misrouted: 'stop' })).toEqual(classify(outcome, NOW, { misrouted: 'stop' }));
  });

  it('a 409 HTML page is not the API declining: it fails as any other 4xx', () => {
    expect(classifyAssign(response(409, { message: '<html>' }, { html: true }), NOW, { misrouted: 'stop' }).kind).toBe('permanent');
  });
});

describe('agentInDetails: the agent in GET /customer/details', () => {
  it.each([
    [{ customer: { assignedUserNumber: '919811111111', assignedToUser: 'Asha' } }, '919811111111'],
    [{ customer: { assignedUserNumber: '+919811111111' } }, '919811111111'],
    [{ customer: { assignedUserNumber: 919811111111 } }, '919811111111'],
    [{ customer: { assignedUserNumber: null, assignedToUser: null } }, null],
    [{ customer: { assignedUserNumber: '' } }, null],
  ])('%j → %j', (body, agent) => {
    expect(agentInDetails(body)).toBe(agent);
  });

  it.each([
    [undefined],
    [null],
    ['text'],
    [{}],
    [{ customer: {} }],
    [{ customer: { assignedUserNumber: 'Asha' } }],
    [{ customer: { assignedUserNumber: {} } }],
  ])('says nothing for %j (not the documented shape)', (body) => {
    expect(agentInDetails(body)).toBeUndefined();
  });

  it('reads own members only', () => {
    const body = JSON.parse('{"customer": {"__proto__": {"assignedUserNumber": "919811111111"}}}') as unknown;
    expect(agentInDetails(body)).toBeUndefined();
  });
});

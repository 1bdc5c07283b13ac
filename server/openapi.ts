/** The OpenAPI 3.1 description of the HTTP API, served at /api/v1/openapi.json. */
import { MESSAGE_STATES } from '../sql/storage.js';
import { VERSION } from './version.js';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ 'application/json': { schema } });
const error = (description: string) => ({ description, content: json(ref('Error')) });
const ERRORS = {
  400: error('Invalid input; `field` names the parameter at fault'),
  401: error('No or wrong credentials'),
  403: error('Not allowed (admins only, or a web request without X-Requested-With)'),
  404: error('No such record (or not yours)'),
  429: error('Too many failed logins from this address or for this user; see Retry-After'),
};
const idParam = (what: string) => ({ name: 'id', in: 'path', required: true, description: `The ${what}'s id`, schema: { type: 'integer', minimum: 1 } });

export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'smsgate',
      version: VERSION,
      description:
        'Self-hosted SMS gateway for USB GSM modems. Every send stores one message per recipient in a durable queue before it answers; the dispatcher sends them through the SIMs the user may use.',
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }, { basic: [] }, { session: [] }],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'An API token (smsgate token create, or POST /api/v1/tokens)' },
        basic: { type: 'http', scheme: 'basic' },
        session: { type: 'apiKey', in: 'cookie', name: 'smsgate_session', description: 'Web login (POST /api/v1/session); changes need X-Requested-With: smsgate' },
      },
      schemas: {
        Error: {
          type: 'object',
          required: ['error', 'description'],
          properties: {
            error: { type: 'string', description: 'Stable code: BAD_NUMBER, BAD_MESSAGE, NOT_FOUND, CONFLICT, UNAUTHORIZED, FORBIDDEN, RATE_LIMITED, BAD_REQUEST' },
            field: { type: ['string', 'null'], description: 'The parameter at fault' },
            description: { type: 'string' },
            invalid: { type: 'array', items: { type: 'object', properties: { input: { type: 'string' }, reason: { type: 'string' } } }, description: 'Invalid recipients (nothing was stored)' },
          },
        },
        SendRequest: {
          type: 'object',
          required: ['to'],
          oneOf: [{ required: ['text'] }, { required: ['template'] }],
          additionalProperties: false,
          properties: {
            to: {
              oneOf: [
                { type: 'string', description: 'One number or several, comma-separated' },
                { type: 'array', items: { oneOf: [{ type: 'string' }, ref('TemplateRecipient')] } },
              ],
              description:
                'Recipients: E.164 (+79161234567) or national (with send.default_country_code); spaces, dashes and brackets are ignored. With a template, an item may be {to, vars}: its own variables. A number named twice is sent once per distinct text',
            },
            text: { type: 'string', minLength: 1, description: 'GSM-7 when it fits, UCS-2 otherwise; split into concatenated parts. Not with template' },
            template: {
              type: ['string', 'integer'],
              description:
                "A template to render instead of text: its id (a number, or a string of digits), or its name (the user's own first, then the shared one). Each recipient's text is rendered and measured by itself, so encoding and parts may differ per message",
            },
            vars: ref('TemplateVars'),
            flash: { type: 'boolean', default: false, description: 'Class 0: shown at once, not stored' },
            replace_id: { type: 'integer', minimum: 0, maximum: 7, description: 'Replace-ID (TP-PID 0x41..0x47); single-part texts only' },
            report: { type: 'boolean', description: "Ask the network for delivery reports (TP-SRR); default: yes when callback_url is set, else the user's report_default" },
            attempts: { type: 'integer', minimum: 1, description: 'Attempts before the message fails (default send.default_attempts)' },
            priority: { type: 'integer', minimum: -100, maximum: 100, default: 0, description: 'Higher goes first' },
            send_at: { type: 'string', format: 'date-time', description: 'Not before this time' },
            sim: { type: ['string', 'integer'], description: "Send through this SIM (id, IMSI, number or label); it must be one of the user's" },
            msg_id: {
              type: 'string',
              maxLength: 128,
              description:
                'Idempotency key: the same user and msg_id returns the stored messages and sends nothing again. A repeat must ask for the same messages (recipients, rendered texts, options), else 409',
            },
            callback_url: { type: 'string', format: 'uri', description: 'Receives a signed POST on every state change' },
          },
        },
        TemplateVars: {
          type: 'object',
          maxProperties: 200,
          propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_.-]{0,63}$' },
          additionalProperties: { type: ['string', 'number'] },
          description: 'Template variables: strings or finite numbers (numbers are written as JavaScript writes them). A missing variable is a 400 naming vars.<name>',
        },
        TemplateRecipient: {
          type: 'object',
          required: ['to'],
          additionalProperties: false,
          properties: {
            to: { type: ['string', 'integer'], description: 'One number' },
            vars: { ...ref('TemplateVars'), description: "This recipient's variables; they win over the request's vars. Errors name to[i].vars.<name>" },
          },
        },
        Template: {
          type: 'object',
          properties: {
            id: { type: 'integer' },
            name: { type: 'string' },
            body: { type: 'string' },
            shared: { type: 'boolean', description: 'Usable by everyone; made and changed by admins' },
            user_id: { type: ['integer', 'null'], description: 'The owner (null for a shared template)' },
            variables: { type: 'array', items: { type: 'string' }, description: 'The variables the body uses, in order of first use' },
            created_at: { type: 'string', format: 'date-time' },
            updated_at: { type: 'string', format: 'date-time' },
          },
        },
        TemplateWrite: {
          type: 'object',
          additionalProperties: false,
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 64, description: 'One line, no spaces at either end, not all digits; unique per owner (409)' },
            body: {
              type: 'string',
              minLength: 1,
              description:
                'At most 2 × send.max_text_length characters. %(name)s is a variable, %% a literal %, %(if name)s…%(else)s…%(endif)s a conditional (nests; else optional); any other % is text. Checked when saved: 400 naming body',
            },
            shared: { type: 'boolean', default: false, description: 'POST only; admins only (403 otherwise)' },
          },
        },
        Message: {
          type: 'object',
          properties: {
            id: { type: 'integer' },
            to: { type: 'string' },
            text: { type: 'string' },
            state: { enum: MESSAGE_STATES },
            reason: { type: ['string', 'null'], description: 'Why it waits, or why it ended so' },
            encoding: { enum: ['gsm7', 'ucs2'] },
            parts: { type: 'integer' },
            flash: { type: 'boolean' },
            replace_id: { type: ['integer', 'null'] },
            report: { type: 'boolean' },
            priority: { type: 'integer' },
            attempts: { type: 'integer' },
            max_attempts: { type: 'integer' },
            sim: { type: ['object', 'null'], properties: { id: { type: 'integer' }, number: { type: ['string', 'null'] }, label: { type: ['string', 'null'] } } },
            requested_sim: { type: ['integer', 'null'] },
            part_refs: { type: ['array', 'null'], items: { type: 'integer' }, description: 'TP-MR of each part the network took' },
            error: { type: ['object', 'null'], properties: { code: { type: 'string' }, meaning: { type: 'string' } }, description: 'The last error: code and meaning (e.g. +CMS ERROR 38)' },
            msg_id: { type: ['string', 'null'] },
            callback_url: { type: ['string', 'null'] },
            send_at: { type: ['string', 'null'], format: 'date-time' },
            created_at: { type: 'string', format: 'date-time' },
            updated_at: { type: 'string', format: 'date-time' },
            sent_at: { type: ['string', 'null'], format: 'date-time' },
            delivered_at: { type: ['string', 'null'], format: 'date-time', description: 'When the last part was reported delivered' },
            part_status: {
              type: ['array', 'null'],
              items: { type: ['object', 'null'], properties: { status: { enum: ['delivered', 'pending', 'failed'] }, code: { type: 'integer' }, text: { type: 'string' } } },
              description: "Each part's delivery report (null: none yet), in the order of part_refs",
            },
          },
        },
        Sim: {
          type: 'object',
          properties: {
            id: { type: 'integer' },
            imsi: { type: 'string' },
            number: { type: ['string', 'null'] },
            label: { type: ['string', 'null'] },
            operator: { type: ['string', 'null'] },
            enabled: { type: 'boolean' },
            monthly_quota: { type: ['integer', 'null'], description: 'Parts per billing period; null = unlimited' },
            billing_day: { type: 'integer' },
            period: { type: 'string' },
            quota_used: { type: 'integer' },
            quota_left: { type: ['integer', 'null'] },
            pacing_ms: { type: 'integer' },
            quiet_start: { type: ['string', 'null'] },
            quiet_end: { type: ['string', 'null'] },
            owners: { type: 'array', items: { type: 'integer' }, description: 'Admins only' },
          },
        },
        SimPatch: {
          type: 'object',
          additionalProperties: false,
          properties: {
            label: { type: ['string', 'null'] },
            monthly_quota: { type: ['integer', 'null'], minimum: 0 },
            billing_day: { type: 'integer', minimum: 1, maximum: 28 },
            pacing_ms: { type: 'integer', minimum: 0 },
            quiet_start: { type: ['string', 'null'], pattern: '^([01]\\d|2[0-3]):[0-5]\\d$' },
            quiet_end: { type: ['string', 'null'], pattern: '^([01]\\d|2[0-3]):[0-5]\\d$' },
            enabled: { type: 'boolean' },
            owners: { type: 'array', items: { type: ['integer', 'string'] }, description: 'User ids or names' },
            balance_ussd: { type: ['string', 'null'], pattern: '^[0-9*#+]{1,160}$', description: 'The balance USSD code (null: the config default)' },
            balance_pattern: { type: ['string', 'null'], description: 'A regular expression finding the amount (group "amount" or the first group; "currency")' },
            balance_low: { type: ['string', 'number', 'null'], description: 'Low-balance threshold' },
            balance_pause: { type: 'boolean', description: 'Pause the SIM when its balance is low' },
          },
        },
        Received: {
          type: 'object',
          description: 'A received message (one row per message: the parts of a concatenated one are joined)',
          properties: {
            id: { type: 'integer' },
            from: { type: 'string', description: 'The sender: a number ("+" when international) or a name' },
            text: { type: 'string', description: 'For an incomplete message, "[…]" stands for each missing part; 8-bit data as hex' },
            encoding: { enum: ['gsm7', 'ucs2', '8bit'] },
            class: { type: ['integer', 'null'] },
            flash: { type: 'boolean' },
            parts: { type: 'integer' },
            parts_received: { type: 'integer' },
            complete: { type: 'boolean', description: 'False when some parts never came within inbound.incomplete_wait_s' },
            sim: { type: ['object', 'null'] },
            channel_id: { type: ['integer', 'null'] },
            sent_at: { type: ['string', 'null'], description: "The SMSC's time stamp, with the sender's offset" },
            received_at: { type: 'string' },
            updated_at: { type: 'string' },
          },
        },
        Balance: {
          type: 'object',
          properties: {
            at: { type: 'string' },
            amount: { type: ['string', 'null'], description: 'Decimal with "." ("123.45"); null when none was read' },
            currency: { type: ['string', 'null'] },
            answer: { type: ['string', 'null'], description: "The network's answer" },
            error: { type: ['string', 'null'] },
          },
        },
        Channel: {
          type: 'object',
          properties: {
            id: { type: 'integer' },
            port: { type: 'string' },
            box: { type: ['string', 'null'] },
            imei: { type: ['string', 'null'] },
            sim: { type: ['object', 'null'] },
            attached: { type: 'boolean', description: 'Used by this gateway process now' },
            healthy: { type: 'boolean' },
            busy: { type: 'boolean' },
            signal_dbm: { type: ['integer', 'null'] },
            operator: { type: ['string', 'null'] },
            registration: { type: ['string', 'null'] },
            last_error: { type: ['string', 'null'] },
            quota_used: { type: ['integer', 'null'] },
            quota_left: { type: ['integer', 'null'] },
          },
        },
        User: {
          type: 'object',
          properties: { id: { type: 'integer' }, name: { type: 'string' }, role: { enum: ['admin', 'user'] }, disabled: { type: 'boolean' }, created_at: { type: 'string' } },
        },
      },
    },
    paths: {
      '/api/v1/messages': {
        post: {
          summary: 'Queue a message to one or more recipients',
          requestBody: { required: true, content: json(ref('SendRequest')) },
          responses: {
            201: {
              description: 'Stored, one message per recipient (each with its own text, encoding and parts); `template` when one was used',
              content: json({
                type: 'object',
                properties: {
                  duplicate: { const: false },
                  warnings: { type: 'array', items: { type: 'string' } },
                  messages: { type: 'array', items: ref('Message') },
                  template: { type: 'object', properties: { id: { type: 'integer' }, name: { type: 'string' } } },
                },
              }),
            },
            200: { description: 'A repeated msg_id: the messages stored the first time', content: json({ type: 'object', properties: { duplicate: { const: true }, messages: { type: 'array', items: ref('Message') } } }) },
            ...ERRORS,
          },
        },
        get: {
          summary: 'List messages, newest first',
          parameters: [
            { name: 'state', in: 'query', schema: { type: 'string' } },
            { name: 'to', in: 'query', description: 'Recipients containing these digits', schema: { type: 'string' } },
            { name: 'since', in: 'query', schema: { type: 'string', format: 'date-time' } },
            { name: 'until', in: 'query', schema: { type: 'string', format: 'date-time' } },
            { name: 'before', in: 'query', description: 'Paging: messages with a smaller id (next_before of the last page)', schema: { type: 'integer' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500, default: 50 } },
            { name: 'user_id', in: 'query', description: 'Admins: one user only', schema: { type: 'integer' } },
          ],
          responses: {
            200: { description: 'A page', content: json({ type: 'object', properties: { messages: { type: 'array', items: ref('Message') }, next_before: { type: ['integer', 'null'] } } }) },
            ...ERRORS,
          },
        },
      },
      '/api/v1/messages/{id}': {
        get: { summary: 'One message', parameters: [idParam('message')], responses: { 200: { description: 'The message', content: json(ref('Message')) }, ...ERRORS } },
        delete: {
          summary: 'Cancel a queued message',
          parameters: [idParam('message')],
          responses: { 200: { description: 'Cancelled', content: json(ref('Message')) }, 409: error('Not queued any more'), ...ERRORS },
        },
      },
      '/api/v1/templates': {
        get: {
          summary: "Templates: the caller's own and the shared ones (admins: all), by name",
          responses: { 200: { description: 'Templates', content: json({ type: 'object', properties: { templates: { type: 'array', items: ref('Template') } } }) }, ...ERRORS },
        },
        post: {
          summary: 'Save a template (shared: admins only)',
          requestBody: { required: true, content: json({ ...ref('TemplateWrite'), required: ['name', 'body'] }) },
          responses: { 201: { description: 'Saved', content: json(ref('Template')) }, 409: error('The owner has a template of this name'), ...ERRORS },
        },
      },
      '/api/v1/templates/{id}': {
        get: { summary: 'One template (own, shared, or any for admins)', parameters: [idParam('template')], responses: { 200: { description: 'The template', content: json(ref('Template')) }, ...ERRORS } },
        put: {
          summary: 'Change a template: name, body or both (owner or admin; a shared one: admins only, 403 otherwise)',
          parameters: [idParam('template')],
          requestBody: { required: true, content: json(ref('TemplateWrite')) },
          responses: { 200: { description: 'The template', content: json(ref('Template')) }, 409: error('The owner has a template of this name'), ...ERRORS },
        },
        delete: { summary: 'Delete a template (owner or admin; a shared one: admins only)', parameters: [idParam('template')], responses: { 200: { description: '{id, deleted: true}' }, ...ERRORS } },
      },
      '/api/v1/templates/preview': {
        post: {
          summary: 'The text a template gives with these variables, measured as a send measures it',
          requestBody: {
            required: true,
            content: json({
              type: 'object',
              additionalProperties: false,
              properties: {
                template: { type: ['string', 'integer'], description: 'A stored template: name or id (not with body)' },
                body: { type: 'string', description: 'A body not saved (not with template)' },
                vars: ref('TemplateVars'),
              },
            }),
          },
          responses: {
            200: {
              description: 'The rendered text',
              content: json({
                type: 'object',
                properties: {
                  text: { type: 'string' },
                  encoding: { enum: ['gsm7', 'ucs2'] },
                  parts: { type: 'integer' },
                  characters: { type: 'integer' },
                  remaining: { type: 'integer', description: 'Units left in the last part' },
                  variables: { type: 'array', items: { type: 'string' } },
                  template: { type: ['object', 'null'], properties: { id: { type: 'integer' }, name: { type: 'string' } } },
                },
              }),
            },
            ...ERRORS,
          },
        },
      },
      '/api/v1/sims': { get: { summary: "The caller's SIMs (all for admins), with quota used and left", responses: { 200: { description: 'SIMs', content: json({ type: 'object', properties: { sims: { type: 'array', items: ref('Sim') } } }) }, ...ERRORS } } },
      '/api/v1/sims/{id}': {
        patch: {
          summary: 'Change a SIM (admins): quota, billing day, pacing, quiet hours, owners, label, enabled',
          parameters: [{ ...idParam('SIM'), schema: { type: ['integer', 'string'] }, description: 'Id, IMSI, number or label' }],
          requestBody: { required: true, content: json(ref('SimPatch')) },
          responses: { 200: { description: 'The SIM', content: json(ref('Sim')) }, ...ERRORS },
        },
      },
      '/api/v1/sims/{id}/balance': {
        post: {
          summary: "Ask a SIM's balance now (USSD); a low balance pauses the SIM and alerts when its settings say so",
          parameters: [{ ...idParam('SIM'), schema: { type: ['integer', 'string'] } }],
          responses: {
            200: {
              description: 'The check, as stored in the history',
              content: json({ allOf: [ref('Balance'), { type: 'object', properties: { sim: { type: 'integer' }, low: { type: ['string', 'null'] }, is_low: { type: 'boolean' }, enabled: { type: 'boolean' }, paused_reason: { type: ['string', 'null'] } } }] }),
            },
            503: error('No working channel of the SIM can send USSD now'),
            ...ERRORS,
          },
        },
      },
      '/api/v1/sims/{id}/balances': {
        get: {
          summary: "A SIM's balance history, newest first",
          parameters: [{ ...idParam('SIM'), schema: { type: ['integer', 'string'] } }, { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000 } }],
          responses: { 200: { description: 'History', content: json({ type: 'object', properties: { sim: { type: 'integer' }, balances: { type: 'array', items: ref('Balance') } } }) }, ...ERRORS },
        },
      },
      '/api/v1/sims/{id}/ussd': {
        post: {
          summary: 'Send a USSD code through the SIM and return the answer (admins: the USSD console)',
          parameters: [{ ...idParam('SIM'), schema: { type: ['integer', 'string'] } }],
          requestBody: { required: true, content: json({ type: 'object', required: ['code'], properties: { code: { type: 'string', pattern: '^[0-9*#+]{1,160}$' } } }) },
          responses: {
            200: {
              description: "The network's answer",
              content: json({
                type: 'object',
                properties: {
                  sim: { type: 'integer' },
                  code: { type: 'string' },
                  status: { enum: ['done', 'action-required', 'terminated', 'other-client', 'not-supported', 'timeout'] },
                  status_code: { type: 'integer' },
                  text: { type: ['string', 'null'] },
                  raw: { type: ['string', 'null'] },
                  dcs: { type: ['integer', 'null'] },
                },
              }),
            },
            502: error("The modem refused it (modem_code: the modem's code)"),
            503: error('No working channel of the SIM'),
            504: error('No answer in time'),
            ...ERRORS,
          },
        },
      },
      '/api/v1/inbox': {
        get: {
          summary: 'Received messages, newest first (a user sees those of the SIMs they own)',
          parameters: [
            { name: 'sim', in: 'query', schema: { type: ['integer', 'string'] }, description: 'Id, IMSI, number or label' },
            { name: 'from', in: 'query', schema: { type: 'string' }, description: 'The sender, exactly' },
            { name: 'since', in: 'query', schema: { type: 'string', format: 'date-time' } },
            { name: 'before', in: 'query', schema: { type: 'integer' }, description: 'Paging: next_before of the previous page' },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500 } },
          ],
          responses: { 200: { description: 'A page', content: json({ type: 'object', properties: { messages: { type: 'array', items: ref('Received') }, next_before: { type: ['integer', 'null'] } } }) }, ...ERRORS },
        },
      },
      '/api/v1/inbox/{id}': {
        get: {
          summary: 'A received message, with its deliveries (webhooks, command, forwards) and their state',
          parameters: [idParam('received message')],
          responses: { 200: { description: 'The message', content: json({ allOf: [ref('Received'), { type: 'object', properties: { deliveries: { type: 'array', items: { type: 'object' } } } }] }) }, ...ERRORS },
        },
      },
      '/api/v1/channels': {
        get: { summary: 'Channels: signal, operator, registration, health, last error, quota', responses: { 200: { description: 'Channels', content: json({ type: 'object', properties: { channels: { type: 'array', items: ref('Channel') } } }) }, ...ERRORS } },
      },
      '/api/v1/segments': {
        get: {
          summary: 'Encoding and parts of a text (what the send form shows)',
          security: [],
          parameters: [
            { name: 'text', in: 'query', required: true, schema: { type: 'string' } },
            { name: 'encoding', in: 'query', schema: { enum: ['auto', 'gsm7', 'ucs2'] } },
          ],
          responses: { 200: { description: 'encoding, parts, units used and left' }, 400: ERRORS[400] },
        },
      },
      '/api/v1/session': {
        post: {
          summary: 'Web login: sets the session cookie',
          security: [],
          requestBody: { content: json({ type: 'object', required: ['login', 'password'], properties: { login: { type: 'string' }, password: { type: 'string' } } }) },
          responses: { 200: { description: 'Logged in' }, 401: ERRORS[401], 429: ERRORS[429] },
        },
        get: { summary: 'Who is logged in', responses: { 200: { description: 'The user' }, 401: ERRORS[401] } },
        delete: { summary: 'Log out', responses: { 200: { description: 'Logged out' } } },
      },
      '/api/v1/users': {
        get: { summary: 'Users (admins)', responses: { 200: { description: 'Users', content: json({ type: 'object', properties: { users: { type: 'array', items: ref('User') } } }) }, ...ERRORS } },
        post: {
          summary: 'Create a user (admins)',
          requestBody: { content: json({ type: 'object', required: ['name', 'password'], properties: { name: { type: 'string' }, password: { type: 'string', minLength: 8 }, role: { enum: ['admin', 'user'] } } }) },
          responses: { 201: { description: 'Created', content: json(ref('User')) }, 409: error('The name is taken'), ...ERRORS },
        },
      },
      '/api/v1/users/{id}': {
        patch: {
          summary: 'Change a user (admins): password, role, disabled',
          parameters: [idParam('user')],
          requestBody: {
            content: json({ type: 'object', properties: { password: { type: 'string' }, role: { enum: ['admin', 'user'] }, disabled: { type: 'boolean' }, report_default: { type: 'boolean' } } }),
          },
          responses: { 200: { description: 'The user', content: json(ref('User')) }, 409: error('That would leave no enabled admin'), ...ERRORS },
        },
      },
      '/api/v1/tokens': {
        get: { summary: "The caller's API tokens (admins: ?user_id=)", responses: { 200: { description: 'Tokens (never their values)' }, ...ERRORS } },
        post: {
          summary: 'Create an API token; its value is shown once',
          requestBody: { content: json({ type: 'object', properties: { label: { type: 'string' }, user_id: { type: 'integer', description: 'Admins: for another user' } } }) },
          responses: { 201: { description: '{id, token, label}' }, ...ERRORS },
        },
      },
      '/api/v1/tokens/{id}': { delete: { summary: 'Revoke a token', parameters: [idParam('token')], responses: { 200: { description: 'Revoked' }, ...ERRORS } } },
      '/smsc.php': {
        get: {
          summary: 'Classic device endpoint (also /send; GET or POST, query or form)',
          security: [],
          parameters: ['login', 'pass', 'tel', 'msg', 'flash', 'replacemessages_id', 'attempts', 'msg_id', 'intl'].map((name) => ({ name, in: 'query', schema: { type: 'string' } })),
          responses: {
            200: { description: '{"success":true,"description":"Saved to queue","ids":[…]}' },
            400: { description: '{"success":false,"description":"Empty phone number" | "Invalid phone number: …" | "Empty message" | …}' },
            401: { description: '{"success":false,"description":"Wrong login or password"}' },
            403: { description: '{"success":false,"description":"Login and password required"}' },
          },
        },
      },
      '/sms/v1/sms': {
        post: {
          summary: 'Operator-style A2P endpoint (HTTP Basic)',
          security: [{ basic: [] }],
          requestBody: {
            content: json({
              type: 'object',
              required: ['to', 'message'],
              properties: { from: { type: 'string' }, to: { type: ['integer', 'string'] }, message: { type: 'string' }, callback_url: { type: 'string' }, msg_id: { type: 'string' } },
            }),
          },
          responses: { 200: { description: '{"result":{"status":{"code":0,"description":"ok"},"msg_id":"…"}}' }, 400: { description: '{"result":{"status":{"code":400,"description":"…"}}}' } },
        },
      },
      '/health': { get: { summary: 'Liveness and readiness', security: [], responses: { 200: { description: 'Healthy' } } } },
    },
  };
}

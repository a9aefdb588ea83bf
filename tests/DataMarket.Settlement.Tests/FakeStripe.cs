using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace DataMarket.Settlement.Tests;

public enum FakeFault
{
    /// <summary>500 before anything happens (nothing stored under the key).</summary>
    ServerError,
    /// <summary>The request is carried out, then the connection is cut before the answer.</summary>
    LoseAnswer,
    /// <summary>
    /// The request is carried out, then answered 504 as by a gateway that timed out waiting for it. (A client-side
    /// timeout would make the test hang on a clock, and a slow machine could time out calls that should not.)
    /// </summary>
    Timeout,
    /// <summary>A final refusal: a card decline for charges, an invalid request for transfers.</summary>
    Decline,
    /// <summary>
    /// The request is carried out, then the answer is held back until the client gives up: the client's own timeout
    /// fires (the request is aborted), as when Stripe is slow to answer a call it has already carried out.
    /// </summary>
    Stall,
}

/// <summary>
/// A stateful fake of the parts of Stripe's API the rails use, on a loopback Kestrel that Stripe.net reaches through
/// <c>StripeClientOptions.ApiBase</c>. It keeps PaymentIntents, refunds, Express accounts, transfers, transfer reversals and balances (the
/// platform's and each connected account's); a reused idempotency key replays the first answer, and with other
/// parameters gets 400 <c>idempotency_error</c>, as Stripe does. Faults are queued per path. Webhook events are
/// signed with <see cref="WebhookSecret"/> in Stripe's <c>t=...,v1=...</c> scheme.
/// </summary>
public sealed class FakeStripe : IAsyncDisposable
{
    public const string ApiKey = "sk_test_fake";
    public const string WebhookSecret = "whsec_fake_secret";

    private readonly object _gate = new();
    private readonly Dictionary<string, (string Parameters, int Status, string Body)> _replies = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Queue<FakeFault>> _faults = new(StringComparer.Ordinal);
    private readonly WebApplication _app;
    private int _next;

    private FakeStripe(WebApplication app)
    {
        _app = app;
        Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
    }

    public string Url { get; }

    public Dictionary<string, JsonObject> PaymentIntents { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, JsonObject> Transfers { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, JsonObject> Accounts { get; } = new(StringComparer.Ordinal);

    public List<JsonObject> Refunds { get; } = [];

    /// <summary>Transfer reversals carried out (a replayed key adds none).</summary>
    public List<JsonObject> Reversals { get; } = [];

    /// <summary>The platform's available balance: charges in, refunds, disputes and transfers out.</summary>
    public long PlatformBalance { get; set; }

    public Dictionary<string, long> AccountBalances { get; } = new(StringComparer.Ordinal);

    /// <summary>New Express accounts can receive transfers at once (else they wait for <see cref="Onboard"/>).</summary>
    public bool AutoOnboard { get; set; } = true;

    /// <summary>Status a new confirmed PaymentIntent gets: <c>succeeded</c>, or <c>requires_action</c> (3-D Secure).</summary>
    public string ChargeStatus { get; set; } = "succeeded";

    /// <summary>Called (outside the lock) after a POST to a path was carried out and before it is answered: a crash point.</summary>
    public Action<string, JsonObject>? AfterProcessed { get; set; }

    /// <summary>Requests per "METHOD path", retries included.</summary>
    public Dictionary<string, int> Requests { get; } = new(StringComparer.Ordinal);

    /// <summary>Requests per idempotency key (a retry under the same key counts twice).</summary>
    public Dictionary<string, int> RequestsByKey { get; } = new(StringComparer.Ordinal);

    /// <summary>Keys of stalled requests, added once the client gave up on them (aborted the request).</summary>
    public List<string> AbandonedByClient { get; } = [];

    private readonly TaskCompletionSource _abandoned = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when a client first gives up on a stalled request.</summary>
    public Task ClientGaveUp => _abandoned.Task;

    public static async Task<FakeStripe> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        FakeStripe? fake = null;
        app.Map("/v1/{**path}", (HttpContext http) => fake!.HandleAsync(http));
        await app.StartAsync();
        fake = new FakeStripe(app);
        return fake;
    }

    /// <summary>The settings that point the settlement service's Stripe rails here.</summary>
    public IDictionary<string, string?> Settings() => new Dictionary<string, string?>
    {
        ["Settlement:Rails"] = "Stripe",
        ["Settlement:Stripe:ApiKey"] = ApiKey,
        ["Settlement:Stripe:WebhookSecret"] = WebhookSecret,
        ["Settlement:Stripe:ApiBase"] = Url,
        // The rails' own retry path is what is under test, so Stripe.net does not retry behind it. The client's timeout
        // stays long: a busy machine must not turn an ordinary call into a failure.
        ["Settlement:Stripe:MaxNetworkRetries"] = "0",
    };

    public void Inject(string path, FakeFault fault, int times = 1)
    {
        lock (_gate)
        {
            if (!_faults.TryGetValue(path, out var queue))
            {
                _faults[path] = queue = new Queue<FakeFault>();
            }

            for (var i = 0; i < times; i++)
            {
                queue.Enqueue(fault);
            }
        }
    }

    /// <summary>Transfers of a group, by destination: what reconciliation at Stripe would see.</summary>
    public IReadOnlyList<JsonObject> TransfersIn(string group)
    {
        lock (_gate)
        {
            return Transfers.Values.Where(t => (string?)t["transfer_group"] == group).ToList();
        }
    }

    /// <summary>The buyer finished 3-D Secure: the PaymentIntent succeeds; returns the signed <c>payment_intent.succeeded</c> event.</summary>
    public (string Json, string Signature) CompleteAction(string paymentIntentId)
    {
        lock (_gate)
        {
            var intent = PaymentIntents[paymentIntentId];
            if ((string?)intent["status"] != "succeeded")
            {
                intent["status"] = "succeeded";
                PlatformBalance += (long)intent["amount"]!;
            }

            return Event("payment_intent.succeeded", intent);
        }
    }

    /// <summary>A <c>payment_intent.payment_failed</c> event for the intent as it was when the attempt failed.</summary>
    public (string Json, string Signature) FailedAttempt(string paymentIntentId)
    {
        lock (_gate)
        {
            var snapshot = PaymentIntents[paymentIntentId].DeepClone().AsObject();
            snapshot["status"] = "requires_payment_method";
            snapshot["last_payment_error"] = new JsonObject { ["type"] = "card_error", ["code"] = "card_declined", ["message"] = "Your card was declined." };
            return Event("payment_intent.payment_failed", snapshot);
        }
    }

    /// <summary>The seller finished onboarding: transfers capability active; returns the signed <c>account.updated</c> event.</summary>
    public (string Json, string Signature) Onboard(string accountId)
    {
        lock (_gate)
        {
            var account = Accounts[accountId];
            account["capabilities"] = new JsonObject { ["transfers"] = "active" };
            account["payouts_enabled"] = true;
            return Event("account.updated", account);
        }
    }

    /// <summary>The buyer's bank disputes the charge: the platform's balance loses it; returns <c>charge.dispute.created</c>.</summary>
    public (string Json, string Signature) Dispute(string paymentIntentId, long? partial = null)
    {
        lock (_gate)
        {
            var intent = PaymentIntents[paymentIntentId];
            var amount = partial ?? (long)intent["amount"]!;
            PlatformBalance -= amount;
            var dispute = new JsonObject
            {
                ["id"] = NewId("dp"), ["object"] = "dispute", ["amount"] = amount, ["currency"] = (string?)intent["currency"],
                ["charge"] = (string?)intent["latest_charge"], ["payment_intent"] = paymentIntentId, ["status"] = "needs_response", ["reason"] = "fraudulent",
                ["created"] = Now(), ["livemode"] = false, ["metadata"] = new JsonObject(),
            };
            return Event("charge.dispute.created", dispute);
        }
    }

    /// <summary>A signed event around <paramref name="data"/> (a copy), as Stripe would deliver it.</summary>
    public (string Json, string Signature) Event(string type, JsonObject data)
    {
        var body = new JsonObject
        {
            ["id"] = NewId("evt"), ["object"] = "event", ["api_version"] = Stripe.StripeConfiguration.ApiVersion, ["created"] = Now(),
            ["livemode"] = false, ["pending_webhooks"] = 1, ["type"] = type,
            ["data"] = new JsonObject { ["object"] = data.DeepClone() },
            ["request"] = new JsonObject { ["id"] = null, ["idempotency_key"] = null },
        };
        var json = body.ToJsonString();
        return (json, Sign(json, DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
    }

    public static string Sign(string json, long timestamp, string secret = WebhookSecret)
    {
        var mac = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes($"{timestamp}.{json}"));
        return $"t={timestamp},v1={Convert.ToHexStringLower(mac)}";
    }

    private async Task HandleAsync(HttpContext http)
    {
        var path = http.Request.Path.Value!;
        var method = http.Request.Method;
        var form = http.Request.HasFormContentType ? (await http.Request.ReadFormAsync()).ToDictionary(f => f.Key, f => f.Value.ToString(), StringComparer.Ordinal) : [];
        var query = http.Request.Query.ToDictionary(q => q.Key, q => q.Value.ToString(), StringComparer.Ordinal);
        var key = http.Request.Headers["Idempotency-Key"].ToString();
        FakeFault? fault = null;
        int status;
        string body;
        JsonObject? created = null;
        lock (_gate)
        {
            Requests[$"{method} {path}"] = Requests.GetValueOrDefault($"{method} {path}") + 1;
            if (key.Length > 0)
            {
                RequestsByKey[key] = RequestsByKey.GetValueOrDefault(key) + 1;
            }

            if (method == "POST" && _faults.TryGetValue(path, out var queue) && queue.Count > 0)
            {
                fault = queue.Dequeue();
            }

            var parameters = $"{method} {path}?" + string.Join("&", form.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => $"{f.Key}={f.Value}"));
            if (fault == FakeFault.ServerError)
            {
                (status, body) = (500, Error("api_error", null, "An unknown error occurred (injected)"));
            }
            else if (method == "POST" && key.Length > 0 && _replies.TryGetValue(key, out var reply))
            {
                (status, body) = reply.Parameters == parameters
                    ? (reply.Status, reply.Body)
                    : (400, Error("idempotency_error", null, $"Keys for idempotent requests can only be used with the same parameters they were first used with (key {key})."));
                fault = fault is FakeFault.Decline ? null : fault;
            }
            else
            {
                (status, created) = fault == FakeFault.Decline ? Decline(path, form) : Execute(method, path, form, query);
                body = created?.ToJsonString() ?? "{}";
                if (status >= 400 && created is not null && created.ContainsKey("error"))
                {
                    created = null;
                }

                if (method == "POST" && key.Length > 0)
                {
                    _replies[key] = (parameters, status, body);
                }
            }
        }

        if (created is not null && method == "POST")
        {
            AfterProcessed?.Invoke(path, created);
        }

        switch (fault)
        {
            case FakeFault.LoseAnswer:
                http.Abort();
                return;
            case FakeFault.Stall:
                // No clock here: the request ends only when the client aborts it (its timeout) or the server stops.
                try
                {
                    await Task.Delay(System.Threading.Timeout.Infinite, http.RequestAborted);
                }
                catch (OperationCanceledException)
                {
                    lock (_gate)
                    {
                        AbandonedByClient.Add(key);
                    }

                    _abandoned.TrySetResult();
                }

                return;
            case FakeFault.Timeout:
                (status, body) = (504, Error("api_error", null, "The request timed out (injected) after it was carried out"));
                break;
        }

        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json";
        http.Response.Headers["Request-Id"] = NewId("req");
        await http.Response.WriteAsync(body);
    }

    private (int Status, JsonObject? Body) Execute(string method, string path, Dictionary<string, string> form, Dictionary<string, string> query)
    {
        switch (method, path)
        {
            case ("POST", "/v1/payment_intents"):
            {
                var amount = long.Parse(form["amount"], CultureInfo.InvariantCulture);
                var id = NewId("pi");
                var intent = new JsonObject
                {
                    ["id"] = id, ["object"] = "payment_intent", ["amount"] = amount, ["currency"] = form["currency"], ["status"] = ChargeStatus,
                    ["transfer_group"] = form.GetValueOrDefault("transfer_group"), ["client_secret"] = $"{id}_secret_fake", ["latest_charge"] = NewId("ch"),
                    ["metadata"] = Metadata(form), ["created"] = Now(), ["livemode"] = false,
                };
                if (ChargeStatus == "succeeded")
                {
                    PlatformBalance += amount;
                }

                PaymentIntents[id] = intent;
                return (200, intent);
            }

            case ("POST", "/v1/refunds"):
            {
                var intent = PaymentIntents.GetValueOrDefault(form.GetValueOrDefault("payment_intent") ?? string.Empty);
                if (intent is null)
                {
                    return (400, ErrorObject("invalid_request_error", "resource_missing", "No such payment_intent"));
                }

                var amount = form.TryGetValue("amount", out var a) ? long.Parse(a, CultureInfo.InvariantCulture) : (long)intent["amount"]!;
                PlatformBalance -= amount;
                var refund = new JsonObject
                {
                    ["id"] = NewId("re"), ["object"] = "refund", ["amount"] = amount, ["currency"] = (string?)intent["currency"],
                    ["payment_intent"] = (string?)intent["id"], ["status"] = "succeeded", ["metadata"] = Metadata(form), ["created"] = Now(),
                };
                Refunds.Add(refund);
                return (200, refund);
            }

            case ("POST", "/v1/transfers"):
            {
                var amount = long.Parse(form["amount"], CultureInfo.InvariantCulture);
                var destination = form["destination"];
                if (!Accounts.TryGetValue(destination, out var account))
                {
                    return (400, ErrorObject("invalid_request_error", "resource_missing", $"No such destination: '{destination}'"));
                }

                if ((string?)account["capabilities"]?["transfers"] != "active")
                {
                    return (400, ErrorObject("invalid_request_error", "insufficient_capabilities_for_transfer", "The destination account has not finished onboarding."));
                }

                if (PlatformBalance < amount)
                {
                    return (400, ErrorObject("invalid_request_error", "balance_insufficient", "You have insufficient available funds in your Stripe account."));
                }

                PlatformBalance -= amount;
                AccountBalances[destination] = AccountBalances.GetValueOrDefault(destination) + amount;
                var id = NewId("tr");
                var transfer = new JsonObject
                {
                    ["id"] = id, ["object"] = "transfer", ["amount"] = amount, ["amount_reversed"] = 0L, ["currency"] = form["currency"],
                    ["destination"] = destination, ["transfer_group"] = form.GetValueOrDefault("transfer_group"), ["metadata"] = Metadata(form),
                    ["reversed"] = false, ["created"] = Now(), ["livemode"] = false,
                };
                Transfers[id] = transfer;
                return (200, transfer);
            }

            case ("GET", "/v1/transfers"):
            {
                var group = query.GetValueOrDefault("transfer_group");
                var data = new JsonArray(Transfers.Values.Where(t => group is null || (string?)t["transfer_group"] == group).Select(t => (JsonNode)t.DeepClone()).ToArray());
                return (200, new JsonObject { ["object"] = "list", ["url"] = "/v1/transfers", ["has_more"] = false, ["data"] = data });
            }

            case ("POST", "/v1/accounts"):
            {
                var id = NewId("acct");
                var account = new JsonObject
                {
                    ["id"] = id, ["object"] = "account", ["type"] = form.GetValueOrDefault("type"), ["charges_enabled"] = false,
                    ["payouts_enabled"] = AutoOnboard, ["capabilities"] = new JsonObject { ["transfers"] = AutoOnboard ? "active" : "inactive" },
                    ["metadata"] = Metadata(form), ["created"] = Now(),
                };
                Accounts[id] = account;
                return (200, account);
            }

            case ("POST", "/v1/account_links"):
                return (200, new JsonObject
                {
                    ["object"] = "account_link", ["url"] = $"https://connect.stripe.com/setup/e/{form["account"]}/{NewId("link")}",
                    ["created"] = Now(), ["expires_at"] = Now() + 300,
                });
        }

        if (method == "POST" && path.StartsWith("/v1/transfers/", StringComparison.Ordinal) && path.EndsWith("/reversals", StringComparison.Ordinal))
        {
            return Reverse(path["/v1/transfers/".Length..^"/reversals".Length], form);
        }

        if (method == "GET" && path.StartsWith("/v1/accounts/", StringComparison.Ordinal) && Accounts.TryGetValue(path["/v1/accounts/".Length..], out var found))
        {
            return (200, found);
        }

        return (404, ErrorObject("invalid_request_error", "resource_missing", $"Unrecognized request URL ({method}: {path})"));
    }

    /// <summary>A transfer reversal: the amount goes back from the connected account to the platform, up to what is not yet reversed.</summary>
    private (int Status, JsonObject? Body) Reverse(string transferId, Dictionary<string, string> form)
    {
        if (!Transfers.TryGetValue(transferId, out var transfer))
        {
            return (404, ErrorObject("invalid_request_error", "resource_missing", $"No such transfer: '{transferId}'"));
        }

        var left = (long)transfer["amount"]! - (long)transfer["amount_reversed"]!;
        var amount = form.TryGetValue("amount", out var a) ? long.Parse(a, CultureInfo.InvariantCulture) : left;
        if (amount <= 0 || amount > left)
        {
            return (400, ErrorObject("invalid_request_error", "parameter_invalid_integer",
                $"Reversal amount {amount} exceeds what is left of transfer {transferId} ({left})."));
        }

        var destination = (string)transfer["destination"]!;
        AccountBalances[destination] = AccountBalances.GetValueOrDefault(destination) - amount;
        PlatformBalance += amount;
        transfer["amount_reversed"] = (long)transfer["amount_reversed"]! + amount;
        transfer["reversed"] = (long)transfer["amount_reversed"]! == (long)transfer["amount"]!;
        var reversal = new JsonObject
        {
            ["id"] = NewId("trr"), ["object"] = "transfer_reversal", ["amount"] = amount, ["currency"] = (string?)transfer["currency"],
            ["transfer"] = transferId, ["metadata"] = Metadata(form), ["created"] = Now(),
        };
        Reversals.Add(reversal);
        return (200, reversal);
    }

    private (int Status, JsonObject Body) Decline(string path, Dictionary<string, string> form) =>
        path == "/v1/payment_intents"
            ? (402, ErrorObject("card_error", "card_declined", "Your card was declined."))
            : (400, ErrorObject("invalid_request_error", "account_invalid", "The destination account cannot receive transfers (injected)."));

    private static JsonObject Metadata(Dictionary<string, string> form)
    {
        var metadata = new JsonObject();
        foreach (var (name, value) in form.Where(f => f.Key.StartsWith("metadata[", StringComparison.Ordinal)))
        {
            metadata[name["metadata[".Length..^1]] = value;
        }

        return metadata;
    }

    private static string Error(string type, string? code, string message) => ErrorObject(type, code, message).ToJsonString();

    private static JsonObject ErrorObject(string type, string? code, string message) =>
        new() { ["error"] = new JsonObject { ["type"] = type, ["code"] = code, ["message"] = message } };

    private string NewId(string prefix) => $"{prefix}_fake{Interlocked.Increment(ref _next):D6}";

    private static long Now() => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

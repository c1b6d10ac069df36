//! STS, the subset the CLI and SDKs need to learn who they are
//! (`GetCallerIdentity`). Query protocol: form-encoded in, XML out.

use aws_protocol::error::{xml_escape, AwsError};

use crate::aws::Caller;

const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

pub(crate) fn handle(caller: &Caller, form: &[u8]) -> Result<String, AwsError> {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(form).into_owned().collect();
    let action = params
        .iter()
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| AwsError::client("MissingAction", "Missing Action"))?;
    match action {
        "GetCallerIdentity" => Ok(get_caller_identity(caller)),
        other => Err(AwsError::client(
            "InvalidAction",
            format!("Could not find operation {other} for version 2011-06-15"),
        )),
    }
}

fn get_caller_identity(caller: &Caller) -> String {
    let user_id = caller
        .access_key_id
        .clone()
        .unwrap_or_else(|| caller.account.clone());
    format!(
        "<GetCallerIdentityResponse xmlns=\"{XMLNS}\"><GetCallerIdentityResult>\
         <Arn>arn:aws:iam::{account}:root</Arn><UserId>{user}</UserId><Account>{account}</Account>\
         </GetCallerIdentityResult><ResponseMetadata><RequestId>{rid}</RequestId></ResponseMetadata>\
         </GetCallerIdentityResponse>",
        account = xml_escape(&caller.account),
        user = xml_escape(&user_id),
        rid = xml_escape(&caller.request_id),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Caller {
        Caller {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            access_key_id: Some("123456789012".into()),
            request_id: "r-1".into(),
        }
    }

    #[test]
    fn answers_get_caller_identity_and_refuses_unknown_actions() {
        let xml = handle(&caller(), b"Action=GetCallerIdentity&Version=2011-06-15").expect("ok");
        assert!(xml.contains("<Account>123456789012</Account>"));
        assert!(xml.contains("<Arn>arn:aws:iam::123456789012:root</Arn>"));
        let err = handle(&caller(), b"Action=AssumeRole").expect_err("unknown");
        assert_eq!(err.code, "InvalidAction");
        assert_eq!(
            handle(&caller(), b"").expect_err("missing").code,
            "MissingAction"
        );
    }
}
